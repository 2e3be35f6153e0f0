// The space line of genotype files (nas/genotype_file.hpp).
#include "nas/genotype_file.hpp"

#include <sstream>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "nas/error.hpp"

namespace nas {
namespace {

constexpr std::string_view kPrefix = "# space: ";

void emit(YAML::Emitter& out, const Value& value) {
  std::visit([&](const auto& v) {
    using T = std::decay_t<decltype(v)>;
    if constexpr (std::is_same_v<T, std::vector<std::int64_t>> || std::is_same_v<T, std::vector<double>> ||
                  std::is_same_v<T, std::vector<std::string>>) {
      out << YAML::Flow << YAML::BeginSeq;
      for (const auto& item : v) out << item;
      out << YAML::EndSeq;
    } else {
      out << v;
    }
  }, value);
}

}  // namespace

std::string space_comment(const PluginChoice& space) {
  YAML::Emitter out;
  out << YAML::Flow << YAML::BeginMap << YAML::Key << "plugin" << YAML::Value << space.entry->name;
  for (const ParamSpec& spec : space.entry->schema) {
    out << YAML::Key << spec.name << YAML::Value;
    emit(out, space.params.at(spec.name));
  }
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
