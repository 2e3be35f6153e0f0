// The registry of plugin factories and the registrar plugins fill.
#include "nas/registry.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace nas {
namespace {

bool known_kind(std::string_view kind) {
  return std::any_of(kinds.begin(), kinds.end(), [&](const KindInfo& k) { return k.name == kind; });
}

bool valid_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
  });
}

}  // namespace

void Registrar::fail(std::string message) noexcept {
  try {
    if (failure_.empty()) failure_ = std::move(message);
  } catch (...) {
    // Out of memory while reporting: keep whatever message we had.
  }
}

void Registrar::add_entry(std::string kind, std::string name, std::string doc, Schema schema,
                          std::shared_ptr<const AnyFactory> factory, std::vector<std::string> capabilities) {
  if (!known_kind(kind)) throw Error(fmt::format("unknown kind '{}'", kind));
  if (!valid_name(name))
    throw Error(fmt::format("invalid {} name '{}': use lower-case letters, digits, '_', '-' and '.'", kind, name));
  for (const ParamSpec& spec : schema) {
    if (spec.name == "plugin") throw Error(fmt::format("{}/{}: 'plugin' is reserved and cannot be a parameter", kind, name));
    if (spec.type == ParamType::choice && spec.choices.empty())
      throw Error(fmt::format("{}/{}: choice parameter '{}' lists no choices", kind, name, spec.name));
  }
  std::string key = kind + "/" + name;
  if (std::any_of(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.key == key; }))
    throw Error(fmt::format("registers '{}' twice", key));
  entries_.push_back(Entry{std::move(key), std::move(kind), std::move(name), std::move(doc), std::move(schema),
                           nullptr, std::move(factory), std::move(capabilities)});
}

namespace {

// Every value of every preset is one of `schema`'s parameters, of its type, in its range.
void check_presets(const Entry& entry, const Schema& schema, const Presets& presets, std::string_view what) {
  for (const auto& [preset, values] : presets)
    for (const auto& [key, value] : values) {
      const ParamSpec* spec = find_param(schema, key);
      if (!spec || !spec->default_value || value.index() != spec->default_value->index())
        throw Error(fmt::format("{}: preset '{}' sets '{}', which is not {} of that type (with a default)", entry.key,
                                preset, key, what));
      const double* number = std::get_if<double>(&value);
      const std::int64_t* integer = std::get_if<std::int64_t>(&value);
      const double x = number ? *number : integer ? static_cast<double>(*integer) : 0.0;
      const std::string* text = std::get_if<std::string>(&value);
      if (((number || integer) && ((spec->min && x < *spec->min) || (spec->max && x > *spec->max))) ||
          (spec->type == ParamType::choice && text &&
           std::find(spec->choices.begin(), spec->choices.end(), *text) == spec->choices.end()))
        throw Error(fmt::format("{}: preset '{}' sets '{}' to {}; expected {}", entry.key, preset, key,
                                to_string(value), spec->expected()));
    }
}

}  // namespace

void Registrar::set_models(ModelFamily models) {
  const Entry& space = entries_.back();
  for (const ParamSpec& spec : models.schema) {
    if (spec.name == "plugin" || spec.name == "preset" || find_param(space.schema, spec.name))
      throw Error(fmt::format("{}: model parameter '{}' is reserved or a parameter of the space itself", space.key,
                              spec.name));
    if (!spec.default_value) throw Error(fmt::format("{}: model parameter '{}' needs a default", space.key, spec.name));
  }
  check_presets(space, models.schema, models.presets, "a model parameter");
  entries_.back().models = std::move(models);
}

void Registrar::set_presets(Presets presets) {
  const Entry& entry = entries_.back();
  if (find_param(entry.schema, "preset"))
    throw Error(fmt::format("{}: a plugin with presets cannot have a parameter named 'preset'", entry.key));
  check_presets(entry, entry.schema, presets, "one of its parameters");
  entries_.back().presets = std::move(presets);
}

void Registry::commit(const std::shared_ptr<const PluginFile>& plugin, std::vector<Entry> entries) {
  for (const Entry& e : entries)
    if (const Entry* existing = find(e.key))
      throw UsageError(fmt::format("'{}' is already registered by '{}'", e.key, existing->plugin->file.string()));
  plugins_.push_back(plugin);
  for (Entry& e : entries) {
    e.plugin = plugin;
    entries_.push_back(std::move(e));
  }
}

const Entry* Registry::find(std::string_view key) const {
  auto it = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.key == key; });
  return it == entries_.end() ? nullptr : &*it;
}

std::vector<const Entry*> Registry::of_kind(std::string_view kind) const {
  std::vector<const Entry*> out;
  for (const Entry& e : entries_)
    if (e.kind == kind) out.push_back(&e);
  std::sort(out.begin(), out.end(), [](const Entry* a, const Entry* b) { return a->name < b->name; });
  return out;
}

std::vector<const Entry*> Registry::with_capability(std::string_view kind, std::string_view capability) const {
  std::vector<const Entry*> out = of_kind(kind);
  std::erase_if(out, [&](const Entry* e) { return !e->has(capability); });
  return out;
}

const Entry& Registry::require(std::string_view kind, std::string_view name) const {
  if (const Entry* e = find(fmt::format("{}/{}", kind, name))) return *e;
  std::vector<std::string_view> known;
  for (const Entry* e : of_kind(kind)) known.push_back(e->name);
  std::string message = known.empty() ? fmt::format("unknown {} plugin '{}'; no {} plugins are loaded", kind, name, kind)
                                      : fmt::format("unknown {} plugin '{}'; known: {}", kind, name, fmt::join(known, ", "));
  if (!broken_.empty())
    message += fmt::format(" ({} plugin file(s) failed to load; see 'nas-host plugins list')", broken_.size());
  throw UsageError(message);
}

}  // namespace nas
