// Stage "train": trains a genotype's network on a dataset and reports test accuracy. Writes
// metrics.jsonl, checkpoint.pt (after every epoch), weights.pt (torch.load-able) and result.json.
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "nas/dataset.hpp"
#include "nas/log.hpp"
#include "nas/recipe.hpp"
#include "nas/regularizer.hpp"
#include "nas/space.hpp"
#include "stages/stages.hpp"

namespace fs = std::filesystem;

namespace nas::stages {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw UsageError(fmt::format("train: cannot read genotype file '{}'", path));
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void run(const StageConfig& stage, const Registry& registry, const Context& context) {
  const Params& p = stage.params;
  const PluginChoice& space_choice = *stage.one("space");
  const PluginChoice& data_choice = *stage.one("dataset");
  auto space = registry.create<Space>(space_choice.entry->name, space_choice.params, context, {});
  auto train_set = registry.create<Dataset>(data_choice.entry->name, data_choice.params, context, {Split::train});
  auto test_set = registry.create<Dataset>(data_choice.entry->name, data_choice.params, context, {Split::test});

  std::string genotype_file = p.get<std::string>("genotype");
  if (genotype_file.empty()) {
    genotype_file = (context.run_dir / "best.genotype").string();
    if (!fs::is_regular_file(genotype_file))
      throw UsageError(fmt::format("train: no genotype given and no '{}' (a retrain stage writes it); set train.genotype",
                                   genotype_file));
  }
  const std::string genotype = read_file(genotype_file);
  space->canonical(genotype, genotype_file);  // checks the file, naming it

  std::vector<std::unique_ptr<Regularizer>> regularizers;
  std::vector<Regularizer*> active;
  for (const PluginChoice& r : stage.slots.at("regularizers")) {
    regularizers.push_back(registry.create<Regularizer>(r.entry->name, r.params, context, {}));
    active.push_back(regularizers.back().get());
  }

  ChildTraining child(*space, genotype, p, *train_set, active, context, context.seed, context.run_dir / "checkpoint.pt");
  const ModelCost& cost = child.cost();
  context.log.info("training {}@{} ({:.2f}M parameters, {:.1f}M mult-adds) on {}: {} training, {} validation, "
                   "{} test examples, {} epochs of {} steps", p.get<std::int64_t>("N"), p.get<std::int64_t>("F"),
                   cost.params / 1e6, cost.mult_adds / 1e6, data_choice.entry->key, child.train_examples(),
                   child.validation_examples(), test_set->size(), child.epochs(), child.batches_per_epoch());

  TrainResult result = child.fit();
  nlohmann::ordered_json report{{"genotype", genotype_file}, {"hash", architecture_hash(*space, genotype)},
                                {"params", cost.params},     {"mult_adds", cost.mult_adds},
                                {"diverged", result.diverged}, {"steps", result.steps},
                                {"train_images_per_s", result.images_per_second}};
  if (result.diverged) {
    report["diverged_step"] = result.diverged_step;
    context.log.warn("training diverged at step {}; no test accuracy", result.diverged_step);
  } else {
    Metrics test = child.test(*test_set);
    report["validation_top1"] = result.validation.top1;
    report["test_top1"] = test.top1;
    report["test_top5"] = test.top5;
    child.save_weights(context.run_dir / "weights.pt");
    context.log.info("test accuracy: {:.2f}% top-1, {:.2f}% top-5 ({} images); weights in {}", 100 * test.top1,
                     100 * test.top5, test.examples, (context.run_dir / "weights.pt").string());
  }
  std::ofstream(context.run_dir / "result.json") << report.dump(2) << "\n";
}

}  // namespace

StageDef train() {
  return StageDef{
      "train",
      "trains a genotype's network on a dataset and reports test accuracy",
      [] {
        Schema schema{param::path("genotype", "").help("genotype file; empty: this run's best.genotype (from retrain)")};
        for (ParamSpec& spec : recipe_schema()) schema.push_back(std::move(spec));
        return schema;
      }(),
      {Slot{"space", "space", true, false, "the search space that reads the genotype"},
       Slot{"dataset", "dataset", true, false, "the data to train and test on"},
       Slot{"regularizers", "regularizer", false, true, "regularizers, applied in order"}},
      run,
  };
}

}  // namespace nas::stages
