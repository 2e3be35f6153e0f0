// Pipeline stages: what a stage section of the config may hold, and how the stage runs.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "nas/api.hpp"
#include "nas/context.hpp"
#include "nas/registry.hpp"
#include "nas/schema.hpp"

namespace nas {

/// A place in a stage section that names a plugin: `dataset: {plugin: synthetic, ...params}`,
/// or, when `multiple`, a list of such maps.
struct Slot {
  std::string name;
  std::string kind;
  bool required = true;
  bool multiple = false;
  std::string doc;
};

/// A plugin chosen in the config, with its validated parameters.
struct PluginChoice {
  const Entry* entry = nullptr;
  Params params;
};

struct StageDef;
class Evaluator;

/// One stage of a resolved config.
struct NAS_API StageConfig {
  const StageDef* def = nullptr;
  Params params;
  std::map<std::string, std::vector<PluginChoice>, std::less<>> slots;

  /// The single plugin in a slot that is not `multiple`; nullptr if an optional slot is empty.
  const PluginChoice* one(std::string_view slot) const;
};

struct StageDef {
  std::string name;
  std::string doc;
  Schema params;
  std::vector<Slot> slots;
  std::function<void(const StageConfig&, const Registry&, const Context&)> run;
  /// What a worker process does during the stage, in a run of several processes (empty: nothing).
  std::function<void(const StageConfig&, const Registry&, const Context&)> serve;
  /// The evaluator of a stage that dispatches evaluations (search, retrain), built in this process:
  /// what an evaluator process (nas-host evaluator) serves. Empty for other stages.
  std::function<std::unique_ptr<Evaluator>(const StageConfig&, const Registry&, const Context&)> evaluator;
};

/// The stages nas-host knows, in the order a pipeline runs them by default.
NAS_API const std::vector<StageDef>& builtin_stages();

}  // namespace nas
