// The space line of genotype files (nas/genotype_file.hpp).
#include "nas/genotype_file.hpp"

#include <sstream>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "nas/error.hpp"
#include "yaml_values.hpp"

namespace nas {
namespace {

constexpr std::string_view kPrefix = "# space: ";

}  // namespace

std::string space_comment(const PluginChoice& space) {
  YAML::Emitter out;
  out << YAML::Flow << YAML::BeginMap << YAML::Key << "plugin" << YAML::Value << space.entry->name;
  emit_params(out, space.entry->schema, space.params);
  out << YAML::EndMap;
  return fmt::format("{}{}\n", kPrefix, out.c_str());
}

std::optional<SpaceRecord> recorded_space(const std::string& text, const std::string& source) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(kPrefix, 0) != 0) continue;
    try {
      const YAML::Node map = YAML::Load(line.substr(kPrefix.size()));
      if (!map.IsMap() || !map["plugin"] || !map["plugin"].IsScalar()) throw YAML::Exception({}, "not a map with a plugin");
      SpaceRecord record{map["plugin"].Scalar(), {}};
      for (auto it = map.begin(); it != map.end(); ++it) {
        if (it->first.Scalar() == "plugin") continue;
        YAML::Emitter value;
        value << YAML::Flow << it->second;
        record.assignments.push_back(fmt::format("{}={}", it->first.Scalar(), value.c_str()));
      }
      return record;
    } catch (const YAML::Exception&) {
      throw UsageError(fmt::format("{}: the '{}...' line is not a map like {{plugin: nasnet, blocks: 5}}", source, kPrefix));
    }
  }
  return std::nullopt;
}

}  // namespace nas
