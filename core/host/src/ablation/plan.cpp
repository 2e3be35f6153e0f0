// Reading an ablation file, expanding it into runs and validating each one; the plan's files.
#include "ablation/plan.hpp"

#include <algorithm>
#include <fstream>
#include <regex>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "config_document.hpp"
#include "nas/files.hpp"
#include "nas/config.hpp"
#include "nas/pipeline.hpp"

namespace fs = std::filesystem;

namespace nas::ablation {
namespace {

// The ablation file's own keys; any other key of an override is a key of the base config.
const std::vector<std::string> kKeys{"name", "base", "set", "output_dir", "arms", "grid", "seeds",
                                     "metrics", "checkpoints", "baseline", "statistics"};
const std::vector<std::string> kMetrics{"best_reward", "final_score", "test_accuracy"};

Location location(const fs::path& file, const YAML::Node& node) {
  if (!node.IsDefined() || node.Mark().is_null()) return {file.string(), 0, 0};
  return {file.string(), node.Mark().line + 1, node.Mark().column + 1};
}

// Collects every problem of the ablation file, each at its line.
class Problems {
 public:
  explicit Problems(fs::path file) : file_(std::move(file)) {}
  void add(const YAML::Node& node, std::string key, std::string message) {
    diagnostics_.push_back({location(file_, node), std::move(key), std::move(message)});
  }
  void add(const Diagnostic& d) {
    if (std::none_of(diagnostics_.begin(), diagnostics_.end(), [&](const Diagnostic& e) { return e.str() == d.str(); }))
      diagnostics_.push_back(d);
  }
  void throw_if_any() const {
    if (!diagnostics_.empty()) throw ConfigError(diagnostics_);
  }

 private:
  fs::path file_;
  std::vector<Diagnostic> diagnostics_;
};

std::string yaml_text(const YAML::Node& node) {
  YAML::Emitter out;
  out << YAML::Flow << node;
  return out.c_str();
}

// A grid value as part of a folder name: letters, digits and . _ - + kept, anything else '_'.
std::string safe(const std::string& text) {
  std::string out;
  for (char c : text) out += std::isalnum(static_cast<unsigned char>(c)) || std::string_view("._-+").find(c) != std::string_view::npos ? c : '_';
  return out.empty() ? "_" : out;
}

template <class T>
std::optional<T> scalar_as(const YAML::Node& node) {
  if (!node.IsScalar()) return std::nullopt;
  T value{};
  if (!YAML::convert<T>::decode(node, value)) return std::nullopt;
  return value;
}

// The ablation file with the overrides of its own keys applied; the rest are returned for the runs.
YAML::Node load_file(const fs::path& file, const std::vector<std::string>& overrides,
                     std::vector<std::string>& run_overrides) {
  if (!fs::is_regular_file(file)) throw UsageError(fmt::format("ablation file '{}' does not exist", file.string()));
  ConfigDocument::Impl doc;
  doc.file = file;
  try {
    doc.root = YAML::LoadFile(file.string());
  } catch (const YAML::ParserException& e) {
    throw ConfigError({Diagnostic{Location{file.string(), e.mark.line + 1, e.mark.column + 1}, "",
                                  fmt::format("YAML syntax error: {}", e.msg)}});
  } catch (const YAML::BadFile&) {
    throw UsageError(fmt::format("cannot read ablation file '{}'", file.string()));
  }
  if (!doc.root.IsMap())
    throw ConfigError({Diagnostic{Location{file.string(), 1, 1}, "", "expected a map with base, arms, seeds, ..."}});
  for (const std::string& text : overrides) {
    const std::string key = text.substr(0, text.find_first_of(".="));
    if (std::find(kKeys.begin(), kKeys.end(), key) != kKeys.end()) apply_override(doc, text);
    else run_overrides.push_back(text);
  }
  return doc.root;
}

struct Arm {
  std::string name;
  std::vector<std::pair<YAML::Node, YAML::Node>> overrides;  // key (a path), value
};

std::vector<Arm> read_arms(const YAML::Node& root, Problems& problems) {
  const YAML::Node arms = child(root, "arms");
  std::vector<Arm> out;
  if (!arms.IsSequence() || arms.size() == 0) {
    problems.add(arms.IsDefined() ? arms : root, "arms", "expected a non-empty list of arms, each {name: NAME, KEY.PATH: VALUE, ...}");
    return out;
  }
  static const std::regex name_pattern("[A-Za-z0-9][A-Za-z0-9._-]*");
  std::set<std::string> seen;
  for (std::size_t i = 0; i < arms.size(); ++i) {
    const YAML::Node arm = arms[i];
    const std::string key = fmt::format("arms.{}", i);
    if (!arm.IsMap()) {
      problems.add(arm, key, "expected a map {name: NAME, KEY.PATH: VALUE, ...}");
      continue;
    }
    Arm a{"", {}};
    const YAML::Node name = child(arm, "name");
    if (auto text = scalar_as<std::string>(name); !text || !std::regex_match(*text, name_pattern))
      problems.add(name.IsDefined() ? name : arm, key + ".name",
                   "expected a name usable as a folder name (letters, digits, '.', '_', '-')");
    else if (!seen.insert(*text).second)
      problems.add(name, key + ".name", fmt::format("arm '{}' is named twice; arm names must differ", *text));
    else
      a.name = *text;
    for (auto it = arm.begin(); it != arm.end(); ++it) {
      const std::string path = it->first.Scalar();
      if (path == "name") continue;
      if (path == "experiment.seed" || path == "experiment")
        problems.add(it->first, key + "." + path, "the seed is the ablation's: set 'seeds', not experiment.seed, in arms");
      a.overrides.emplace_back(it->first, it->second);
    }
    out.push_back(std::move(a));
  }
  return out;
}

struct Axis {
  std::string key;
  YAML::Node key_node, values;
};

std::vector<Axis> read_grid(const YAML::Node& root, Problems& problems) {
  const YAML::Node grid = child(root, "grid");
  std::vector<Axis> axes;
  if (!grid.IsDefined() || grid.IsNull()) return axes;
  if (!grid.IsMap()) {
    problems.add(grid, "grid", "expected a map KEY.PATH: [VALUE, ...] (each axis's values, crossed with the arms)");
    return axes;
  }
  for (auto it = grid.begin(); it != grid.end(); ++it) {
    const std::string key = it->first.Scalar();
    if (!it->second.IsSequence() || it->second.size() == 0)
      problems.add(it->second, "grid." + key, "expected a non-empty list of values");
    else if (key == "experiment.seed")
      problems.add(it->first, "grid." + key, "the seed is the ablation's: set 'seeds'");
    else
      axes.push_back({key, it->first, it->second});
  }
  return axes;
}

std::vector<std::int64_t> read_seeds(const YAML::Node& root, Problems& problems) {
  const YAML::Node node = child(root, "seeds");
  std::vector<std::int64_t> seeds;
  if (!node.IsDefined()) {
    for (std::int64_t s = 0; s < 5; ++s) seeds.push_back(s);
    return seeds;
  }
  if (auto count = scalar_as<std::int64_t>(node)) {
    if (*count < 1) problems.add(node, "seeds", fmt::format("expected a count of seeds >= 1 or a list of seeds, got {}", *count));
    for (std::int64_t s = 0; s < *count; ++s) seeds.push_back(s);
    return seeds;
  }
  if (node.IsSequence() && node.size() > 0) {
    for (const YAML::Node& item : node) {
      auto seed = scalar_as<std::int64_t>(item);
      if (!seed || *seed < 0) problems.add(item, "seeds", "expected a seed, an integer >= 0");
      else if (std::find(seeds.begin(), seeds.end(), *seed) != seeds.end()) problems.add(item, "seeds", fmt::format("seed {} is listed twice", *seed));
      else seeds.push_back(*seed);
    }
    return seeds;
  }
  problems.add(node, "seeds", "expected a count of seeds >= 1 or a non-empty list of seeds");
  return seeds;
}

template <class T>
std::vector<T> read_list(const YAML::Node& node, const std::string& key, Problems& problems, const char* expected) {
  std::vector<T> out;
  if (!node.IsDefined() || node.IsNull()) return out;
  if (!node.IsSequence()) {
    problems.add(node, key, fmt::format("expected a list of {}", expected));
    return out;
  }
  for (const YAML::Node& item : node) {
    auto value = scalar_as<T>(item);
    if (!value || *value <= 0) problems.add(item, key, fmt::format("expected {}", expected));
    else out.push_back(*value);
  }
  return out;
}

// The settings; `metrics` stays empty when the file leaves it to the default (known once a run resolved).
Settings read_settings(const YAML::Node& root, const std::vector<Arm>& arms, Problems& problems) {
  Settings s;
  const YAML::Node metrics = child(root, "metrics");
  if (metrics.IsDefined()) {
    if (!metrics.IsSequence() || metrics.size() == 0) problems.add(metrics, "metrics", fmt::format("expected a list of: {}", fmt::join(kMetrics, ", ")));
    for (const YAML::Node& m : metrics) {
      auto name = scalar_as<std::string>(m);
      if (!name || std::find(kMetrics.begin(), kMetrics.end(), *name) == kMetrics.end())
        problems.add(m, "metrics", fmt::format("unknown metric; expected one of: {}", fmt::join(kMetrics, ", ")));
      else s.metrics.push_back(*name);
    }
  }
  const YAML::Node checkpoints = child(root, "checkpoints");
  if (checkpoints.IsDefined() && !checkpoints.IsMap()) problems.add(checkpoints, "checkpoints", "expected a map {evaluations: [N, ...], seconds: [S, ...]}");
  for (auto it = checkpoints.IsMap() ? checkpoints.begin() : YAML::const_iterator(); checkpoints.IsMap() && it != checkpoints.end(); ++it)
    if (const std::string key = it->first.Scalar(); key != "evaluations" && key != "seconds")
      problems.add(it->first, "checkpoints." + key, "unknown key; expected evaluations or seconds");
  for (std::int64_t n : read_list<std::int64_t>(child(checkpoints, "evaluations"), "checkpoints.evaluations", problems, "evaluation counts >= 1"))
    s.checkpoints.push_back({Checkpoint::Kind::evaluations, static_cast<double>(n)});
  for (double t : read_list<double>(child(checkpoints, "seconds"), "checkpoints.seconds", problems, "seconds > 0"))
    s.checkpoints.push_back({Checkpoint::Kind::seconds, t});
  if (s.checkpoints.empty()) s.checkpoints.push_back({Checkpoint::Kind::end, 0});  // given ones end with the budget

  const YAML::Node baseline = child(root, "baseline");
  if (!baseline.IsDefined()) {
    if (!arms.empty()) s.baseline = arms.front().name;
  } else if (auto name = scalar_as<std::string>(baseline);
             !name || std::none_of(arms.begin(), arms.end(), [&](const Arm& a) { return a.name == *name; })) {
    std::vector<std::string> names;
    for (const Arm& a : arms) names.push_back(a.name);
    problems.add(baseline, "baseline", fmt::format("expected the name of an arm: {}", fmt::join(names, ", ")));
  } else {
    s.baseline = *name;
  }

  const YAML::Node statistics = child(root, "statistics");
  if (statistics.IsDefined() && !statistics.IsMap()) problems.add(statistics, "statistics", "expected a map");
  bool data_changes = false;  // an arm that changes a dataset: same seed, other data
  for (const Arm& a : arms)
    for (const auto& [key, value] : a.overrides)
      data_changes |= (key.Scalar() + yaml_text(value)).find("dataset") != std::string::npos;
  s.paired = !data_changes;
  for (auto it = statistics.IsMap() ? statistics.begin() : YAML::const_iterator(); statistics.IsMap() && it != statistics.end(); ++it) {
    const std::string key = it->first.Scalar(), path = "statistics." + key;
    const YAML::Node v = it->second;
    if (key == "resamples") {
      auto n = scalar_as<std::int64_t>(v);
      if (!n || *n < 100 || *n > 10'000'000) problems.add(v, path, "expected a number of bootstrap resamples in [100, 10000000]");
      else s.bootstrap.resamples = *n;
    } else if (key == "confidence") {
      auto c = scalar_as<double>(v);
      if (!c || *c <= 0 || *c >= 1) problems.add(v, path, "expected a confidence level in (0, 1), e.g. 0.95");
      else s.bootstrap.confidence = *c;
    } else if (key == "seed") {
      auto seed = scalar_as<std::int64_t>(v);
      if (!seed || *seed < 0) problems.add(v, path, "expected the bootstrap's seed, an integer >= 0");
      else s.bootstrap.seed = static_cast<std::uint64_t>(*seed);
    } else if (key == "alpha") {
      auto a = scalar_as<double>(v);
      if (!a || *a <= 0 || *a >= 1) problems.add(v, path, "expected a significance level in (0, 1), e.g. 0.05");
      else s.alpha = *a;
    } else if (key == "paired") {
      auto text = scalar_as<std::string>(v);
      bool b = false;
      if (text && *text == "auto") continue;
      if (!YAML::convert<bool>::decode(v, b)) problems.add(v, path, "expected auto, true or false");
      else s.paired = b;
    } else {
      problems.add(it->first, path, "unknown key; expected one of: resamples, confidence, seed, alpha, paired");
    }
  }
  return s;
}

// One run's config document: the base, the ablation's `set`, the command line's overrides, the arm's, the grid point's
// (point[k]: the index of axis k's value), the seed. Built from a fresh parse of both files: nodes
// are set into the base as they are (yaml-cpp shares them; its Clone would lose their line numbers).
ConfigDocument run_document(const fs::path& file, const std::vector<std::string>& overrides, std::size_t arm,
                            const std::vector<std::size_t>& point, std::int64_t seed,
                            const std::vector<fs::path>& plugin_dirs) {
  std::vector<std::string> run_overrides;
  const YAML::Node root = load_file(file, overrides, run_overrides);
  Problems ignored(file);  // reported when the plan read them
  const std::vector<Arm> arms = read_arms(root, ignored);
  const std::vector<Axis> axes = read_grid(root, ignored);
  auto impl = std::make_shared<ConfigDocument::Impl>();
  const YAML::Node base = child(root, "base");
  if (base.IsMap()) {
    impl->file = file;  // inline: its relative paths are relative to the ablation file
    impl->root = base;
  } else {
    impl->file = fs::absolute(file).parent_path() / base.Scalar();
    impl->root = YAML::LoadFile(impl->file.string());  // ConfigDocument::load checked it
  }
  // Each override set by the node that writes it, so that errors name its line.
  auto set = [&](const YAML::Node& key, const YAML::Node& value) {
    set_value(*impl, Override{key.Scalar(), {}, file, location(file, key)}, value);
  };
  if (const YAML::Node common = child(root, "set"); common.IsMap())
    for (auto it = common.begin(); it != common.end(); ++it) set(it->first, it->second);
  for (const std::string& text : run_overrides) apply_override(*impl, text);
  for (const auto& [key, value] : arms[arm].overrides) set(key, value);
  for (std::size_t k = 0; k < axes.size(); ++k) set(axes[k].key_node, axes[k].values[point[k]]);
  set_value(*impl, Override{"experiment.seed", {}, file, location(file, child(root, "seeds"))}, YAML::Node(seed));
  ConfigDocument doc(std::move(impl));
  doc.add_plugin_paths(plugin_dirs);  // recorded in the run's config, which is all its process gets
  return doc;
}

void add_warning(Plan& plan, std::string warning) {
  if (std::find(plan.warnings.begin(), plan.warnings.end(), warning) == plan.warnings.end() && plan.warnings.size() < 10)
    plan.warnings.push_back(std::move(warning));
}

bool trains(const PipelineConfig& config) {
  for (const StageConfig& stage : config.stages) {
    if (stage.def->trains) return true;
    for (const auto& [slot, chosen] : stage.slots)
      for (const PluginChoice& choice : chosen)
        if (choice.entry->has(capability::trains_recipe) || choice.entry->has(capability::builds_networks)) return true;
  }
  return false;
}

std::vector<std::string> default_metrics(const PipelineConfig& config) {
  std::vector<std::string> metrics;
  for (const StageConfig& stage : config.stages)
    if (stage.def->name == "search") metrics = {"best_reward", "final_score"};
  for (const StageConfig& stage : config.stages)
    if (stage.def->name == "train" || stage.def->name == "final") {
      metrics.push_back("test_accuracy");  // both write result.json: one metric
      break;
    }
  return metrics;
}

}  // namespace

std::string Checkpoint::label() const {
  switch (kind) {
    case Kind::evaluations: return fmt::format("{} evaluations", static_cast<std::int64_t>(value));
    case Kind::seconds: return fmt::format("{} s", value);
    default: return "end";
  }
}

Plan make_plan(const fs::path& file, const std::vector<std::string>& overrides, const RegistryLoader& load_plugins,
               const std::vector<fs::path>& plugin_dirs) {
  std::vector<std::string> run_overrides;
  const YAML::Node root = load_file(file, overrides, run_overrides);
  Problems problems(file);
  for (auto it = root.begin(); it != root.end(); ++it)
    if (std::find(kKeys.begin(), kKeys.end(), it->first.Scalar()) == kKeys.end())
      problems.add(it->first, it->first.Scalar(), fmt::format("unknown key; expected one of: {}", fmt::join(kKeys, ", ")));
  Plan plan;
  plan.source = fs::absolute(file);
  plan.name = file.stem().string();
  if (const YAML::Node name = child(root, "name"); name.IsDefined()) {
    auto text = scalar_as<std::string>(name);
    if (!text || text->empty() || text->find('/') != std::string::npos || *text == "." || *text == "..")
      problems.add(name, "name", "expected a name usable as a folder name (no '/')");
    else plan.name = *text;
  }
  plan.output_dir = "ablations";
  if (const YAML::Node dir = child(root, "output_dir"); dir.IsDefined()) {
    if (auto text = scalar_as<std::string>(dir); text && !text->empty()) plan.output_dir = *text;
    else problems.add(dir, "output_dir", "expected a folder (relative: to the current folder)");
  }
  const YAML::Node base = child(root, "base");
  if (!base.IsDefined() || !(base.IsMap() || (base.IsScalar() && !base.Scalar().empty())))
    problems.add(base.IsDefined() ? base : root, "base", "expected the base pipeline config: a file (relative to this one) or a map");
  else if (base.IsScalar() && !fs::is_regular_file(fs::absolute(file).parent_path() / base.Scalar()))
    problems.add(base, "base", fmt::format("config file '{}' does not exist", (fs::absolute(file).parent_path() / base.Scalar()).string()));
  if (const YAML::Node common = child(root, "set"); common.IsDefined() && !common.IsMap())
    problems.add(common, "set", "expected a map KEY.PATH: VALUE of overrides for every run's base config");
  const std::vector<Arm> arms = read_arms(root, problems);
  const std::vector<Axis> axes = read_grid(root, problems);
  const std::vector<std::int64_t> seeds = read_seeds(root, problems);
  plan.settings = read_settings(root, arms, problems);
  problems.throw_if_any();

  if (base.IsScalar()) ConfigDocument::load(fs::absolute(file).parent_path() / base.Scalar(), {});  // YAML errors

  // Grid points: the cartesian product of the axes (value indices), the last axis varying fastest.
  std::vector<std::vector<std::size_t>> points{{}};
  for (const Axis& axis : axes) {
    std::vector<std::vector<std::size_t>> next;
    for (const auto& point : points)
      for (std::size_t v = 0; v < axis.values.size(); ++v) {
        next.push_back(point);
        next.back().push_back(v);
      }
    points = std::move(next);
  }
  for (const Axis& axis : axes) plan.axes.push_back(axis.key);
  for (const Arm& arm : arms) plan.arms.push_back(arm.name);
  plan.grid_points = points.size();
  plan.seeds = seeds;

  const Registry registry =
      load_plugins(run_document(file, overrides, 0, points.front(), seeds.front(), plugin_dirs).plugin_paths());
  std::optional<PipelineConfig> first;
  for (std::size_t a = 0; a < arms.size(); ++a)
    for (const auto& point : points)
      for (std::int64_t seed : seeds) {
        Run run{.arm = arms[a].name, .seed = seed};
        std::vector<std::string> parts;
        for (std::size_t k = 0; k < axes.size(); ++k) {
          const std::string value = yaml_text(axes[k].values[point[k]]);
          run.grid.emplace_back(axes[k].key, value);
          parts.push_back(fmt::format("{}={}", safe(axes[k].key), safe(value)));
        }
        run.id = fmt::format("{}{}/seed-{}", run.arm, parts.empty() ? "" : "/" + fmt::format("{}", fmt::join(parts, ",")), seed);
        if (std::any_of(plan.runs.begin(), plan.runs.end(), [&](const Run& other) { return other.id == run.id; }))
          problems.add(root, "grid", fmt::format("two grid points share the folder name '{}' (values differing only in "
                                                 "characters a folder name cannot hold); make them differ", run.id));
        try {
          const PipelineConfig config = resolve(run_document(file, overrides, a, point, seed, plugin_dirs), registry);
          run.config = config.resolved_yaml;
          run.trains = trains(config);
          run.threads = config.experiment.threads;
          for (const StageConfig& stage : config.stages)
            for (const Checkpoint& c : plan.settings.checkpoints)
              if (stage.def->name == "search" && c.kind == Checkpoint::Kind::evaluations &&
                  c.value > static_cast<double>(stage.params.get<std::int64_t>("evaluations")))
                add_warning(plan, fmt::format("checkpoint '{}' is beyond the search budget of {} ({} evaluations): "
                                              "its values are those at the run's end",
                                              c.label(), run.id, stage.params.get<std::int64_t>("evaluations")));
          if (!first) first = config;
        } catch (const ConfigError& e) {
          for (const Diagnostic& d : e.diagnostics()) problems.add(d);
        }
        plan.runs.push_back(std::move(run));
      }
  if (plan.settings.metrics.empty() && first) plan.settings.metrics = default_metrics(*first);
  if (plan.settings.metrics.empty() && first)
    problems.add(root, "metrics", "the base pipeline has no search, train or final stage to compare; set 'metrics'");
  problems.throw_if_any();
  return plan;
}

nlohmann::ordered_json settings_json(const Settings& s) {
  nlohmann::ordered_json checkpoints = nlohmann::ordered_json::array();
  for (const Checkpoint& c : s.checkpoints)
    checkpoints.push_back({{"kind", c.kind == Checkpoint::Kind::evaluations ? "evaluations"
                                    : c.kind == Checkpoint::Kind::seconds   ? "seconds"
                                                                            : "end"},
                           {"value", c.value}});
  return {{"metrics", s.metrics}, {"checkpoints", checkpoints}, {"baseline", s.baseline}, {"paired", s.paired},
          {"alpha", s.alpha},
          {"bootstrap", {{"resamples", s.bootstrap.resamples}, {"confidence", s.bootstrap.confidence},
                         {"seed", s.bootstrap.seed}}}};
}

void write_plan(const Plan& plan, const fs::path& dir) {
  nlohmann::ordered_json runs = nlohmann::ordered_json::array();
  for (const Run& run : plan.runs) {
    nlohmann::ordered_json grid = nlohmann::ordered_json::array();  // [key, value] pairs: the axes' order
    for (const auto& [key, value] : run.grid) grid.push_back({key, value});
    runs.push_back({{"id", run.id}, {"arm", run.arm}, {"grid", grid}, {"seed", run.seed}, {"trains", run.trains},
                    {"threads", run.threads}});
    const fs::path file = config_file(dir, run);
    fs::create_directories(file.parent_path());
    write_file(file, run.config);
  }
  const nlohmann::ordered_json json{{"name", plan.name}, {"source", plan.source.string()}, {"arms", plan.arms},
                                    {"axes", plan.axes}, {"settings", settings_json(plan.settings)}, {"runs", runs}};
  std::error_code ec;
  fs::copy_file(plan.source, dir / "ablation.yaml", fs::copy_options::overwrite_existing, ec);
  write_file(dir / "plan.json", json.dump(2) + "\n");  // whole or not at all: --resume never finds half a plan
}

Plan read_plan(const fs::path& dir) {
  const fs::path file = dir / "plan.json";
  std::ifstream in(file);
  if (!in) throw UsageError(fmt::format("'{}' is not an ablation folder (it has no plan.json)", dir.string()));
  try {
    const nlohmann::json json = nlohmann::json::parse(in);
    Plan plan;
    plan.name = json.at("name");
    plan.source = json.at("source").get<std::string>();
    plan.arms = json.at("arms").get<std::vector<std::string>>();
    plan.axes = json.at("axes").get<std::vector<std::string>>();
    const nlohmann::json& s = json.at("settings");
    plan.settings.metrics = s.at("metrics").get<std::vector<std::string>>();
    for (const auto& c : s.at("checkpoints")) {
      const std::string kind = c.at("kind");
      plan.settings.checkpoints.push_back({kind == "evaluations" ? Checkpoint::Kind::evaluations
                                           : kind == "seconds"   ? Checkpoint::Kind::seconds
                                                                 : Checkpoint::Kind::end,
                                           c.at("value").get<double>()});
    }
    plan.settings.baseline = s.at("baseline");
    plan.settings.paired = s.at("paired");
    plan.settings.alpha = s.at("alpha");
    plan.settings.bootstrap = {s.at("bootstrap").at("resamples"), s.at("bootstrap").at("confidence"),
                               s.at("bootstrap").at("seed")};
    for (const auto& r : json.at("runs")) {
      Run run{.id = r.at("id"), .arm = r.at("arm"), .seed = r.at("seed"), .trains = r.at("trains"),
              .threads = r.at("threads")};
      for (const auto& pair : r.at("grid")) run.grid.emplace_back(pair.at(0).get<std::string>(), pair.at(1).get<std::string>());
      if (std::find(plan.seeds.begin(), plan.seeds.end(), run.seed) == plan.seeds.end()) plan.seeds.push_back(run.seed);
      plan.runs.push_back(std::move(run));
    }
    plan.grid_points = plan.runs.size() / plan.arms.size() / plan.seeds.size();
    return plan;
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("'{}' is damaged: {}", file.string(), e.what()));
  }
}

fs::path run_dir(const fs::path& dir, const Run& run) { return dir / run.id; }
fs::path config_file(const fs::path& dir, const Run& run) { return dir / (run.id + ".yaml"); }
bool finished(const fs::path& dir, const Run& run) { return fs::exists(finished_marker(run_dir(dir, run))); }

}  // namespace nas::ablation
