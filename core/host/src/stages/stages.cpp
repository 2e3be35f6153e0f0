// The list of built-in stages, in the order a pipeline runs them by default.
#include "stages/stages.hpp"

#include <fstream>

#include <fmt/format.h>

#include "nas/dataset.hpp"
#include "nas/error.hpp"
#include "nas/evaluator.hpp"
#include "nas/regularizer.hpp"
#include "nas/space.hpp"

namespace nas {

const std::vector<StageDef>& builtin_stages() {
  static const std::vector<StageDef> all{stages::dataset_stats(), stages::search(), stages::select(),
                                                 stages::retrain(), stages::final_training(), stages::train()};
  return all;
}

namespace stages {

std::string read_genotype_file(const std::string& stage, const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) throw UsageError(fmt::format("{}: cannot read genotype file '{}'", stage, file.string()));
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::shared_ptr<const Space> make_space(const StageConfig& stage, const Registry& registry, const StageContext& context) {
  const PluginChoice& choice = *stage.one("space");
  return registry.create<Space>(choice.entry->name, choice.params, context, {});
}

std::unique_ptr<Evaluator> make_evaluator(const StageConfig& stage, const Registry& registry, const StageContext& context,
                                          std::shared_ptr<const Space> space, const Entry& entry, const Params& params) {
  EvaluatorArgs args{std::move(space), nullptr, {}};
  if (const PluginChoice* data = stage.one("dataset"))
    args.train_set = registry.create<Dataset>(data->entry->name, data->params, context, {Split::train});
  for (const PluginChoice& r : stage.slots.at("regularizers"))
    args.regularizers.push_back(registry.create<Regularizer>(r.entry->name, r.params, context, {}));
  // An evaluator's outputs (e.g. each child's metrics.jsonl) go to a folder of the stage's own; one
  // built for ABI 2.1 or older keeps the run's folder, as it was then.
  Context own = context;
  if (!own.run_dir.empty() && entry.plugin->abi_minor >= 2) {
    own.run_dir /= stage.def->name;
    std::error_code ec;
    std::filesystem::create_directories(own.run_dir, ec);
    if (ec) throw Error(fmt::format("cannot create '{}': {}", own.run_dir.string(), ec.message()));
  }
  return registry.create<Evaluator>(entry.name, params, own, args);
}

}  // namespace stages

const PluginChoice* StageConfig::one(std::string_view slot) const {
  auto it = slots.find(slot);
  if (it == slots.end()) throw Error(fmt::format("stage '{}' has no slot '{}'", def->name, slot));
  return it->second.empty() ? nullptr : &it->second.front();
}

}  // namespace nas
