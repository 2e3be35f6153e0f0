// Stages "train" and "final" (one stage, two names): trains a genotype's network on a dataset and
// reports test accuracy, data-parallel across every process of the run. Writes metrics.jsonl,
// checkpoint.pt (after every epoch), weights.pt (torch.load-able) and result.json.

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "nas/files.hpp"
#include "nas/dataset.hpp"
#include "nas/log.hpp"
#include "nas/recipe.hpp"
#include "nas/regularizer.hpp"
#include "nas/space.hpp"
#include "cluster.hpp"
#include "data_parallel.hpp"
#include "stages/stages.hpp"

namespace fs = std::filesystem;

namespace nas::stages {
namespace {

// The genotype file and text: rank 0 reads them and hands them to the other ranks through the store,
// so they neither need the file nor wait for the stage before to have written it.
std::pair<std::string, std::string> read_genotype(const StageConfig& stage, const Space& space, const StageContext& context) {
  const std::string key = stage.def->name + "/genotype";
  if (context.cluster && !context.cluster->world().coordinator()) {
    const std::string file = context.cluster->store().get_to_str(key + "_file");  // waits for rank 0
    return {file, context.cluster->store().get_to_str(key)};
  }
  std::string file = stage.params.get<std::string>("genotype");
  if (file.empty()) {
    file = (context.run_dir / "best.genotype").string();
    if (!fs::is_regular_file(file))
      throw UsageError(fmt::format("{}: no genotype given and no '{}' (a retrain stage writes it); set {}.genotype",
                                   stage.def->name, file, stage.def->name));
  }
  std::string genotype = read_genotype_file(stage.def->name, file);
  space.canonical(genotype, file);  // checks the file, naming it
  if (context.cluster) {
    context.cluster->store().set(key, genotype);
    context.cluster->store().set(key + "_file", file);
  }
  return {file, genotype};
}

void run(const StageConfig& stage, const Registry& registry, const StageContext& context) {
  const Params& p = stage.params;
  const PluginChoice& space_choice = *stage.one("space");
  const PluginChoice& data_choice = *stage.one("dataset");
  auto space = registry.create<Space>(space_choice.entry->name, space_choice.params, context, {});
  auto train_set = registry.create<Dataset>(data_choice.entry->name, data_choice.params, context, {Split::train});
  auto test_set = registry.create<Dataset>(data_choice.entry->name, data_choice.params, context, {Split::test});
  const auto [genotype_file, genotype] = read_genotype(stage, *space, context);
  const std::int64_t ranks = context.cluster ? context.cluster->world().size : 1;
  const bool writer = !context.cluster || context.cluster->world().coordinator();

  std::vector<std::unique_ptr<Regularizer>> regularizers;
  std::vector<Regularizer*> active;
  for (const PluginChoice& r : stage.slots.at("regularizers")) {
    regularizers.push_back(registry.create<Regularizer>(r.entry->name, r.params, context, {}));
    active.push_back(regularizers.back().get());
  }

  std::optional<ClusterProcessGroup> group;
  if (ranks > 1) group.emplace(*context.cluster);
  ChildTraining child(*space, genotype, p, *train_set, active, context, context.seed, context.run_dir / "checkpoint.pt",
                      group ? &*group : nullptr);
  const ModelCost& cost = child.cost();
  context.log.info("training {} ({:.2f}M parameters, {:.1f}M mult-adds) on {}: {} training, {} validation, "
                   "{} test examples, {} epochs of {} steps{}", space->model_name(p),
                   cost.params / 1e6, cost.mult_adds / 1e6, data_choice.entry->key, child.train_examples(),
                   child.validation_examples(), test_set->size(), child.epochs(), child.batches_per_epoch(),
                   ranks > 1 ? fmt::format(", data-parallel on {} processes (global batch {})", ranks,
                                           p.get<std::int64_t>("batch_size"))
                             : "");

  TrainResult result = child.fit();
  nlohmann::ordered_json report{{"genotype", genotype_file}, {"hash", architecture_hash(*space, genotype)},
                                {"params", cost.params},     {"mult_adds", cost.mult_adds},
                                {"diverged", result.diverged}, {"steps", result.steps},
                                {"train_images_per_s", result.images_per_second}};
  if (result.diverged) {
    report["diverged_step"] = result.diverged_step;
    context.log.warn("training diverged at step {}; no test accuracy", result.diverged_step);
  } else {
    const Metrics test = child.test(*test_set);  // every rank tests its share
    report["validation_top1"] = result.validation.top1;
    report["test_top1"] = test.top1;
    report["test_top5"] = test.top5;
    if (writer) child.save_weights(context.run_dir / "weights.pt");
    context.log.info("test accuracy: {:.2f}% top-1, {:.2f}% top-5 ({} images); weights in {}", 100 * test.top1,
                     100 * test.top5, test.examples, (context.run_dir / "weights.pt").string());
  }
  if (writer) write_file(context.run_dir / "result.json", report.dump(2) + "\n");
}

StageDef definition(std::string name, std::string description) {
  return StageDef{
      .name = std::move(name),
      .doc = std::move(description),
      .params = join({{param::path("genotype", "").help("genotype file; empty: this run's best.genotype (from retrain)")},
                      recipe_schema()}),
      .slots = {Slot{"space", "space", true, false, "the search space that reads the genotype"},
                Slot{"dataset", "dataset", true, false, "the data to train and test on"},
                Slot{"regularizers", "regularizer", false, true, "regularizers, applied in order"}},
      .run = run,
      .serve = run,  // the other ranks train their replicas alongside
      .trains = true,
      .data_parallel = true,
  };
}

}  // namespace

StageDef train() {
  return definition("train", "trains a genotype's network on a dataset and reports test accuracy (data-parallel "
                             "across the run's processes)");
}

StageDef final_training() {
  return definition("final", "the paper's final training: `train` under the name the pipeline gives it (trains "
                             "best.genotype unless told otherwise)");
}

}  // namespace nas::stages
