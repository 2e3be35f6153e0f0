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
  /// What `params` were validated against: the entry's schema, and for an evaluator that trains
  /// (capability trains_recipe) the model parameters of the stage's space too.
  Schema schema;
};

struct StageDef;
class Cluster;
class Evaluator;
struct EvaluatorProcesses;

/// What the host hands a stage: the context it hands plugins, and the host's own services.
struct StageContext : Context {
  const Cluster* cluster = nullptr;  ///< the run's processes and their store, when there are several
  /// How to start evaluator processes (set by nas-host; empty: stages evaluate in this process).
  const EvaluatorProcesses* evaluator_processes = nullptr;
};

/// One stage of a resolved config.
struct NAS_API StageConfig {
  const StageDef* def = nullptr;
  Params params;
  Schema schema;  ///< what `params` were validated against: def->params, plus the model's in a stage that trains
  std::map<std::string, std::vector<PluginChoice>, std::less<>> slots;

  /// The single plugin in a slot that is not `multiple`; nullptr if an optional slot is empty.
  const PluginChoice* one(std::string_view slot) const;
};

struct StageDef {
  std::string name;
  std::string doc;
  Schema params;
  std::vector<Slot> slots;
  std::function<void(const StageConfig&, const Registry&, const StageContext&)> run;
  /// What a worker process does during the stage, in a run of several processes (empty: nothing).
  std::function<void(const StageConfig&, const Registry&, const StageContext&)> serve;
  /// The evaluator of a stage that dispatches evaluations (search, retrain), built in this process:
  /// what an evaluator process (nas-host evaluator) serves. Empty for other stages.
  std::function<std::unique_ptr<Evaluator>(const StageConfig&, const Registry&, const StageContext&)> evaluator;
  /// The stage builds networks of its `space` slot's plugin: its section also takes that space's
  /// model parameters (its ModelFamily) and `preset`.
  bool trains = false;
  /// Every process of the run computes the stage together (data-parallel training): the cores of a
  /// machine are split among all its processes, the coordinator's included.
  bool data_parallel = false;
};

/// The stages nas-host knows, in the order a pipeline runs them by default.
NAS_API const std::vector<StageDef>& builtin_stages();

}  // namespace nas
