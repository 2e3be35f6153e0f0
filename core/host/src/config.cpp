// Loading, overriding, validating and resolving the pipeline config. The only place that reads YAML.
#include "nas/config.hpp"

#include <algorithm>
#include <charconv>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include "config_document.hpp"
#include "yaml_values.hpp"

namespace fs = std::filesystem;

namespace nas {

namespace {

constexpr std::string_view kExperiment = "experiment";
constexpr std::string_view kPluginPaths = "plugin_paths";
constexpr std::string_view kPipeline = "pipeline";
constexpr std::string_view kPlugin = "plugin";

std::string join_path(std::string_view parent, std::string_view key) {
  return parent.empty() ? std::string(key) : fmt::format("{}.{}", parent, key);
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string unknown_key_message(std::string_view key, const std::vector<std::string>& allowed) {
  std::string message = allowed.empty() ? std::string("unknown key; this section takes no keys")
                                        : fmt::format("unknown key; expected one of: {}", fmt::join(allowed, ", "));
  for (const std::string& candidate : allowed)
    if (edit_distance(key, candidate) <= 2) return message + fmt::format(" (did you mean '{}'?)", candidate);
  return message;
}

std::string describe_node(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "nothing";
  if (node.IsMap()) return "a map";
  if (node.IsSequence()) return "a list";
  return fmt::format("'{}'", node.Scalar());
}

template <class T>
bool parse_number(const std::string& text, T& out) {
  const char* begin = text.data();
  const char* end = begin + text.size();
  if (begin != end && *begin == '+') ++begin;
  auto [ptr, ec] = std::from_chars(begin, end, out);
  return ec == std::errc() && ptr == end && begin != end;
}

bool in_bounds(const ParamSpec& spec, double v) {
  return (!spec.min || v >= *spec.min) && (!spec.max || v <= *spec.max);
}

// Converts one scalar to the element type of `spec`; nullopt if it does not fit.
std::optional<Value> convert_scalar(const YAML::Node& node, const ParamSpec& spec, ParamType type) {
  if (!node.IsScalar()) return std::nullopt;
  const std::string& text = node.Scalar();
  switch (type) {
    case ParamType::boolean: {
      bool b = false;
      if (YAML::convert<bool>::decode(node, b)) return Value(b);
      return std::nullopt;
    }
    case ParamType::integer: {
      std::int64_t i = 0;
      if (parse_number(text, i) && in_bounds(spec, static_cast<double>(i))) return Value(i);
      return std::nullopt;
    }
    case ParamType::number: {
      double d = 0;
      if (parse_number(text, d) && d == d && in_bounds(spec, d)) return Value(d);
      return std::nullopt;
    }
    case ParamType::choice:
      if (std::find(spec.choices.begin(), spec.choices.end(), text) == spec.choices.end()) return std::nullopt;
      return Value(text);
    default:
      return Value(text);
  }
}

template <class T>
std::optional<Value> convert_list(const YAML::Node& node, const ParamSpec& spec, ParamType element) {
  if (!node.IsSequence()) return std::nullopt;
  std::vector<T> out;
  for (const YAML::Node& item : node) {
    std::optional<Value> v = convert_scalar(item, spec, element);
    if (!v) return std::nullopt;
    out.push_back(std::get<T>(*v));
  }
  return Value(std::move(out));
}

std::optional<Value> convert(const YAML::Node& node, const ParamSpec& spec) {
  switch (spec.type) {
    case ParamType::integer_list: return convert_list<std::int64_t>(node, spec, ParamType::integer);
    case ParamType::number_list: return convert_list<double>(node, spec, ParamType::number);
    case ParamType::string_list: return convert_list<std::string>(node, spec, ParamType::string);
    default: return convert_scalar(node, spec, spec.type);
  }
}

using Preset = Presets::mapped_type;

// `schema` and, when there are presets, `preset`: the one whose values fill the keys a section leaves out.
Schema with_preset_choice(Schema schema, const Presets& presets, std::string_view what) {
  if (!presets.empty()) {
    std::vector<std::string> names{"none"};
    for (const auto& [name, values] : presets) names.push_back(name);
    schema.insert(schema.begin(), param::choice("preset", names, "none").help(
                                      fmt::format("{} whose parameters fill those not set here", what)));
  }
  return schema;
}

// The model parameters a section that builds networks takes: the space's, and `preset` when it has presets.
Schema model_params(const Entry& space) {
  return with_preset_choice(space.models.schema, space.models.presets, "a named model (the paper's)");
}

// The preset a section names, if it names a known one (a bad name is reported with the other keys).
const Preset* preset_of(const YAML::Node& section, const Presets& presets) {
  const YAML::Node node = child(section, "preset");
  if (!node.IsDefined() || !node.IsScalar()) return nullptr;
  auto it = presets.find(node.Scalar());
  return it == presets.end() ? nullptr : &it->second;
}

// Walks the document, collecting every problem instead of stopping at the first.
class Validator {
 public:
  explicit Validator(const ConfigDocument::Impl& doc) : doc_(doc) {}

  void error(const YAML::Node& node, std::string key, std::string message) {
    diagnostics_.push_back(Diagnostic{where(node, key), std::move(key), std::move(message)});
  }
  void throw_if_any() const {
    if (!diagnostics_.empty()) throw ConfigError(diagnostics_);
  }

  /// Validates a map against `schema`; keys in `also_allowed` are left to the caller. A key the map
  /// leaves out takes its value from `preset` if that has it, else the default.
  Params params(const YAML::Node& map, const std::string& path, const Schema& schema,
                const std::vector<std::string>& also_allowed = {}, const Preset* preset = nullptr) {
    std::map<std::string, Value, std::less<>> values;
    if (map.IsDefined() && !map.IsNull() && !map.IsMap()) {
      error(map, path, fmt::format("expected a map, got {}", describe_node(map)));
      return Params{};
    }
    if (map.IsMap()) {
      std::vector<std::string> allowed;
      for (const ParamSpec& spec : schema) allowed.push_back(spec.name);
      allowed.insert(allowed.end(), also_allowed.begin(), also_allowed.end());
      for (auto it = map.begin(); it != map.end(); ++it) {
        std::string key = it->first.Scalar();
        if (std::find(allowed.begin(), allowed.end(), key) == allowed.end())
          error(it->first, join_path(path, key), unknown_key_message(key, allowed));
      }
    }
    for (const ParamSpec& spec : schema) {
      const YAML::Node node = child(map, spec.name);
      std::string key = join_path(path, spec.name);
      if (!node.IsDefined()) {
        if (auto given = preset ? preset->find(spec.name) : Preset::const_iterator{}; preset && given != preset->end())
          values.emplace(spec.name, given->second);
        else if (spec.default_value) values.emplace(spec.name, *spec.default_value);
        else error(map, key, fmt::format("missing required key; expected {}", spec.expected()));
        continue;
      }
      std::optional<Value> v = convert(node, spec);
      if (!v) {
        error(node, key, fmt::format("expected {}, got {}", spec.expected(), describe_node(node)));
        continue;
      }
      if (spec.type == ParamType::path) v = absolute_path(std::get<std::string>(*v), key);
      values.emplace(spec.name, std::move(*v));
    }
    return Params(std::move(values));
  }

  /// `own` and then the model parameters of `space`, for the section at `path`; a name in both cannot
  /// be told apart in the section, and is reported.
  Schema with_model(const Schema& own, const Entry& space, const YAML::Node& section, const std::string& path) {
    Schema schema = own;
    for (ParamSpec& spec : model_params(space)) {
      if (find_param(own, spec.name))
        error(section, join_path(path, spec.name),
              fmt::format("{}'s model parameter '{}' has the name of one of this section's own; rename one of them",
                          space.key, spec.name));
      else
        schema.push_back(std::move(spec));
    }
    return schema;
  }

  /// The plugin a slot names, validated; an evaluator that builds networks (trains_recipe,
  /// builds_networks) also takes the model parameters of `space`, the stage's space.
  std::optional<PluginChoice> plugin(const YAML::Node& node, const std::string& path, const Slot& slot,
                                     const Registry& registry, const Entry* space) {
    if (!node.IsMap()) {
      error(node, path, fmt::format("expected a map {{plugin: NAME, ...parameters}} naming a {} plugin, got {}",
                                    slot.kind, describe_node(node)));
      return std::nullopt;
    }
    const YAML::Node name = child(node, kPlugin);
    std::string key = join_path(path, kPlugin);
    if (!name.IsDefined() || !name.IsScalar()) {
      error(name.IsDefined() ? name : node, key, fmt::format("expected the name of a {} plugin", slot.kind));
      return std::nullopt;
    }
    try {
      const Entry& entry = registry.require(slot.kind, name.Scalar());
      const bool trains = space && (entry.has(capability::trains_recipe) || entry.has(capability::builds_networks));
      Schema schema = with_preset_choice(entry.schema, entry.presets, "a named setting of this plugin");
      if (trains) schema = with_model(schema, *space, node, path);  // both with presets: 'preset' clashes
      const Preset* preset = preset_of(node, trains && !space->models.presets.empty() ? space->models.presets
                                                                                     : entry.presets);
      Params values = params(node, path, schema, {std::string(kPlugin)}, preset);
      return PluginChoice{&entry, std::move(values), std::move(schema)};
    } catch (const UsageError& e) {
      error(name, key, e.what());
      return std::nullopt;
    }
  }

 private:
  // Relative paths: to the folder of the file that wrote the value (the config file, or the file an
  // override came from), or the current folder for command-line values.
  std::string absolute_path(const std::string& value, const std::string& key) const {
    if (value.empty() || fs::path(value).is_absolute()) return value;
    const Override* by = override_of(key);
    fs::path base = !by ? fs::absolute(doc_.file).parent_path()
                        : by->from_file.empty() ? fs::current_path() : fs::absolute(by->from_file).parent_path();
    return (base / value).lexically_normal().string();
  }

  // The last override that set `key` or a section above it, if one did.
  const Override* override_of(const std::string& key) const {
    for (auto it = doc_.overrides.rbegin(); it != doc_.overrides.rend(); ++it)
      if (key == it->path || key.starts_with(it->path + ".")) return &*it;
    return nullptr;
  }

  // The last override below `key`: one that created the section `key` names.
  const Override* override_below(const std::string& key) const {
    for (auto it = doc_.overrides.rbegin(); it != doc_.overrides.rend(); ++it)
      if (it->path.starts_with(key + ".")) return &*it;
    return nullptr;
  }

  Location where(const YAML::Node& node, const std::string& key) const {
    const Override* by = override_of(key);
    if (!by && (!node.IsDefined() || node.Mark().is_null())) by = override_below(key);
    if (by && by->from_file.empty()) return Location{fmt::format("command-line override '{}'", by->text), 0, 0};
    Location location{by ? by->from_file.string() : doc_.file.string(), 0, 0};
    if (by && (!node.IsDefined() || node.Mark().is_null())) return by->at;
    if (node.IsDefined() && !node.Mark().is_null()) {
      location.line = node.Mark().line + 1;
      location.column = node.Mark().column + 1;
    }
    return location;
  }

  const ConfigDocument::Impl& doc_;
  std::vector<Diagnostic> diagnostics_;
};

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  for (std::size_t start = 0;;) {
    std::size_t dot = path.find('.', start);
    parts.push_back(path.substr(start, dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return parts;
}

}  // namespace

YAML::Node child(const YAML::Node& map, std::string_view key) {
  if (map.IsDefined() && map.IsMap())
    if (const YAML::Node found = map[std::string(key)]; found.IsDefined()) return found;
  return YAML::Node(YAML::NodeType::Undefined);
}

void set_value(ConfigDocument::Impl& doc, const Override& by, const YAML::Node& value) {
  auto fail = [&](std::string message) {
    const Location where = by.from_file.empty() ? Location{fmt::format("command-line override '{}'", by.text), 0, 0}
                                                : by.at;
    throw ConfigError({Diagnostic{where, by.path, std::move(message)}});
  };
  const std::vector<std::string> parts = split_path(by.path);
  YAML::Node node = doc.root;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const std::string& part = parts[i];
    if (part.empty()) fail(fmt::format("'{}' has an empty key", by.path));
    bool last = i + 1 == parts.size();
    if (node.IsSequence()) {
      std::size_t index = 0;
      if (!parse_number(part, index) || index >= node.size())
        fail(fmt::format("'{}' is a list of {} items; '{}' is not an index into it",
                         fmt::join(parts.begin(), parts.begin() + i, "."), node.size(), part));
      if (last) node[index] = value;
      else node.reset(node[index]);
      continue;
    }
    if (node.IsScalar())
      fail(fmt::format("'{}' is a value, not a section", fmt::join(parts.begin(), parts.begin() + i, ".")));
    if (last) {
      node[part] = value;
    } else {
      if (!node[part].IsDefined() || node[part].IsNull()) node[part] = YAML::Node(YAML::NodeType::Map);
      node.reset(node[part]);
    }
  }
  doc.overrides.push_back(by);
}

void apply_override(ConfigDocument::Impl& doc, const std::string& text) {
  auto fail = [&](std::string message) {
    throw ConfigError({Diagnostic{Location{fmt::format("command-line override '{}'", text), 0, 0}, "", std::move(message)}});
  };
  std::size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0) fail("expected KEY.PATH=VALUE");
  YAML::Node value;
  try {
    value = YAML::Load(text.substr(eq + 1));
  } catch (const YAML::Exception& e) {
    fail(fmt::format("the value is not valid YAML: {}", e.msg));
  }
  set_value(doc, Override{text.substr(0, eq), text, {}, {}}, value);
}

void emit_value(YAML::Emitter& out, const Value& value) {
  struct Visitor {
    YAML::Emitter& out;
    void operator()(bool b) const { out << b; }
    void operator()(std::int64_t i) const { out << i; }
    void operator()(double d) const { out << fmt::format("{}", d); }
    void operator()(const std::string& s) const { out << s; }
    void operator()(const std::vector<std::int64_t>& v) const { out << YAML::Flow << v; }
    void operator()(const std::vector<double>& v) const {
      out << YAML::Flow << YAML::BeginSeq;
      for (double d : v) out << fmt::format("{}", d);
      out << YAML::EndSeq;
    }
    void operator()(const std::vector<std::string>& v) const { out << YAML::Flow << v; }
  };
  std::visit(Visitor{out}, value);
}

void emit_params(YAML::Emitter& out, const Schema& schema, const Params& params) {
  for (const ParamSpec& spec : schema) {
    out << YAML::Key << spec.name << YAML::Value;
    emit_value(out, params.at(spec.name));
  }
}

std::string Location::str() const {
  if (line == 0) return file;
  return fmt::format("{}:{}:{}", file, line, column);
}

std::string Diagnostic::str() const {
  return key.empty() ? fmt::format("{}: {}", where.str(), message) : fmt::format("{}: {}: {}", where.str(), key, message);
}

static std::string join_diagnostics(const std::vector<Diagnostic>& diagnostics) {
  std::string text;
  for (const Diagnostic& d : diagnostics) text += (text.empty() ? "" : "\n") + d.str();
  return text;
}

ConfigError::ConfigError(std::vector<Diagnostic> diagnostics)
    : UsageError(join_diagnostics(diagnostics)), diagnostics_(std::move(diagnostics)) {}
ConfigError::~ConfigError() = default;

const Schema& experiment_schema() {
  static const Schema schema = schema_of<Experiment>();
  return schema;
}

ConfigDocument ConfigDocument::load(const fs::path& file, const std::vector<std::string>& overrides) {
  auto impl = std::make_shared<Impl>();
  impl->file = file;
  if (!fs::is_regular_file(file)) throw UsageError(fmt::format("config file '{}' does not exist", file.string()));
  try {
    impl->root = YAML::LoadFile(file.string());
  } catch (const YAML::ParserException& e) {
    throw ConfigError({Diagnostic{Location{file.string(), e.mark.line + 1, e.mark.column + 1}, "",
                                  fmt::format("YAML syntax error: {}", e.msg)}});
  } catch (const YAML::BadFile&) {
    throw UsageError(fmt::format("cannot read config file '{}'", file.string()));
  }
  if (impl->root.IsNull()) impl->root = YAML::Node(YAML::NodeType::Map);
  if (!impl->root.IsMap())
    throw ConfigError({Diagnostic{Location{file.string(), 1, 1}, "", "expected a map of sections at the top level"}});
  for (const std::string& text : overrides) apply_override(*impl, text);
  return ConfigDocument(std::move(impl));
}

ConfigDocument::ConfigDocument(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

const fs::path& ConfigDocument::file() const { return impl_->file; }

std::vector<fs::path> ConfigDocument::plugin_paths() const {
  Validator validator(*impl_);
  static const Schema schema{param::string_list(std::string(kPluginPaths), std::vector<std::string>{})};
  YAML::Node only(YAML::NodeType::Map);
  if (const YAML::Node node = child(impl_->root, kPluginPaths); node.IsDefined()) only[std::string(kPluginPaths)] = node;
  Params params = validator.params(only, "", schema);
  validator.throw_if_any();
  std::vector<fs::path> paths;
  for (const std::string& p : params.get<std::vector<std::string>>(kPluginPaths))
    paths.push_back(fs::absolute(impl_->file.parent_path() / p).lexically_normal());
  return paths;
}

void ConfigDocument::add_plugin_paths(const std::vector<fs::path>& dirs) {
  if (dirs.empty()) return;
  YAML::Node list = child(impl_->root, kPluginPaths);
  if (!list.IsDefined() || !list.IsSequence()) {
    if (list.IsDefined()) return;  // not a list: resolve() reports it
    list = YAML::Node(YAML::NodeType::Sequence);
  }
  for (const fs::path& dir : dirs) list.push_back(fs::absolute(dir).lexically_normal().string());
  impl_->root[std::string(kPluginPaths)] = list;
}

namespace {

// KEY=VALUE assignments as a document of their own, validated against `schema` (a preset filling keys).
Params validate_assignments(const std::vector<std::string>& assignments, const Schema& schema,
                            const Entry* space_with_presets = nullptr) {
  ConfigDocument::Impl impl;
  impl.file = "<command line>";
  impl.root = YAML::Node(YAML::NodeType::Map);
  for (const std::string& text : assignments) apply_override(impl, text);
  Validator validator(impl);
  Params params = validator.params(impl.root, "", schema, {},
                                   space_with_presets ? preset_of(impl.root, space_with_presets->models.presets)
                                                      : nullptr);
  validator.throw_if_any();
  return params;
}

}  // namespace

Params parse_assignments(const Schema& schema, const std::vector<std::string>& assignments) {
  return validate_assignments(assignments, schema);
}

Params parse_model_assignments(const Entry& space, const std::vector<std::string>& assignments) {
  return validate_assignments(assignments, model_params(space), &space);
}

PipelineConfig resolve(const ConfigDocument& doc, const Registry& registry, const std::vector<StageDef>& stages) {
  const ConfigDocument::Impl& impl = doc.impl();
  const YAML::Node root = impl.root;
  Validator validator(impl);
  PipelineConfig config;
  config.file = impl.file;
  config.plugin_paths = doc.plugin_paths();

  // Top-level keys: the core sections and one section per stage.
  std::vector<std::string> top{std::string(kExperiment), std::string(kPluginPaths), std::string(kPipeline)};
  std::vector<std::string> stage_names;
  for (const StageDef& stage : stages) stage_names.push_back(stage.name);
  top.insert(top.end(), stage_names.begin(), stage_names.end());
  for (auto it = root.begin(); it != root.end(); ++it)
    if (std::find(top.begin(), top.end(), it->first.Scalar()) == top.end())
      validator.error(it->first, it->first.Scalar(), unknown_key_message(it->first.Scalar(), top));

  Params experiment = validator.params(child(root, kExperiment), std::string(kExperiment), experiment_schema());
  if (experiment.values().size() == experiment_schema().size()) {  // all valid
    config.experiment = options_from<Experiment>(experiment);
    if (config.experiment.name.empty()) config.experiment.name = impl.file.stem().string();
    if (config.experiment.name.find('/') != std::string::npos || config.experiment.name == "." ||
        config.experiment.name == "..")
      validator.error(child(child(root, kExperiment), "name"), "experiment.name",
                      "expected a name usable as a folder name (no '/')");
  }

  // The pipeline: explicit, or every stage that has a section, in the built-in order.
  std::vector<std::string> order;
  if (const YAML::Node pipeline = child(root, kPipeline); pipeline.IsDefined()) {
    ParamSpec spec = param::string_list(std::string(kPipeline));
    if (std::optional<Value> v = convert(pipeline, spec)) {
      std::size_t i = 0;
      for (const std::string& name : std::get<std::vector<std::string>>(*v)) {
        const YAML::Node item = pipeline[i++];
        if (std::find(stage_names.begin(), stage_names.end(), name) == stage_names.end())
          validator.error(item, std::string(kPipeline), fmt::format("unknown stage '{}'; stages: {}", name, fmt::join(stage_names, ", ")));
        else if (std::find(order.begin(), order.end(), name) != order.end())
          validator.error(item, std::string(kPipeline), fmt::format("stage '{}' is listed twice", name));
        else
          order.push_back(name);
      }
    } else {
      validator.error(pipeline, std::string(kPipeline), fmt::format("expected a list of stage names, got {}", describe_node(pipeline)));
    }
  } else {
    for (const std::string& name : stage_names)
      if (child(root, name).IsDefined()) order.push_back(name);
  }
  if (order.empty() && !child(root, kPipeline).IsDefined())
    validator.error(root, "", fmt::format("no stage to run; add a section for one of: {}", fmt::join(stage_names, ", ")));

  for (const std::string& name : order) {
    const StageDef& def = *std::find_if(stages.begin(), stages.end(), [&](const StageDef& s) { return s.name == name; });
    const YAML::Node section = child(root, name);
    std::vector<std::string> slot_names;
    for (const Slot& slot : def.slots) slot_names.push_back(slot.name);
    StageConfig stage{&def, {}, def.params, {}};
    // The space first: the sections that build its networks take its model parameters.
    std::vector<const Slot*> slots;
    for (const Slot& slot : def.slots) slots.push_back(&slot);
    std::stable_partition(slots.begin(), slots.end(), [](const Slot* s) { return s->kind == "space"; });
    const Entry* space = nullptr;
    for (const Slot* slot_ptr : slots) {
      const Slot& slot = *slot_ptr;
      const YAML::Node node = child(section, slot.name);
      std::string path = join_path(name, slot.name);
      std::vector<PluginChoice>& chosen = stage.slots[slot.name];
      if (!node.IsDefined() || node.IsNull()) {
        if (slot.required)
          validator.error(section, path, fmt::format("missing required key; expected {}{{plugin: NAME, ...parameters}}",
                                                     slot.multiple ? "a list of " : "a map "));
        continue;
      }
      if (!slot.multiple) {
        if (auto choice = validator.plugin(node, path, slot, registry, space)) chosen.push_back(std::move(*choice));
        if (slot.kind == "space" && !chosen.empty()) space = chosen.front().entry;
        continue;
      }
      if (!node.IsSequence()) {
        validator.error(node, path, fmt::format("expected a list of {{plugin: NAME, ...}} maps, got {}", describe_node(node)));
        continue;
      }
      for (std::size_t i = 0; i < node.size(); ++i)
        if (auto choice = validator.plugin(node[i], join_path(path, std::to_string(i)), slot, registry, space))
          chosen.push_back(std::move(*choice));
    }
    const Preset* preset = nullptr;
    if (def.trains && space) {
      stage.schema = validator.with_model(def.params, *space, section, name);
      preset = preset_of(section, space->models.presets);
    }
    stage.params = validator.params(section, name, stage.schema, slot_names, preset);
    config.stages.push_back(std::move(stage));
  }
  validator.throw_if_any();

  YAML::Emitter out;
  out << YAML::Comment(fmt::format("resolved from {}", impl.file.string())) << YAML::Newline;
  out << YAML::BeginMap;
  out << YAML::Key << std::string(kExperiment) << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << config.experiment.name;
  out << YAML::Key << "seed" << YAML::Value << config.experiment.seed;
  out << YAML::Key << "output_dir" << YAML::Value << config.experiment.output_dir;
  out << YAML::Key << "threads" << YAML::Value << config.experiment.threads;
  out << YAML::Key << "processes_per_gpu" << YAML::Value << config.experiment.processes_per_gpu;
  out << YAML::EndMap;
  std::vector<std::string> paths;
  for (const fs::path& p : config.plugin_paths) paths.push_back(p.string());
  out << YAML::Key << std::string(kPluginPaths) << YAML::Value << YAML::Flow << paths;
  out << YAML::Key << std::string(kPipeline) << YAML::Value << YAML::Flow << order;
  for (const StageConfig& stage : config.stages) {
    out << YAML::Key << stage.def->name << YAML::Value << YAML::BeginMap;
    emit_params(out, stage.schema, stage.params);
    for (const Slot& slot : stage.def->slots) {
      const std::vector<PluginChoice>& chosen = stage.slots.at(slot.name);
      if (!slot.multiple && chosen.empty()) continue;
      out << YAML::Key << slot.name << YAML::Value;
      if (slot.multiple) out << YAML::BeginSeq;
      for (const PluginChoice& choice : chosen) {
        out << YAML::BeginMap << YAML::Key << std::string(kPlugin) << YAML::Value << choice.entry->name;
        emit_params(out, choice.schema, choice.params);
        out << YAML::EndMap;
      }
      if (slot.multiple) out << YAML::EndSeq;
    }
    out << YAML::EndMap;
  }
  out << YAML::EndMap;
  config.resolved_yaml = std::string(out.c_str()) + "\n";
  return config;
}

}  // namespace nas
