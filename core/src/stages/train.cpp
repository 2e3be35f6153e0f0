// Stage "train": trains a genotype's network on a dataset and reports test accuracy. Writes
// metrics.jsonl, checkpoint.pt (after every epoch), weights.pt (torch.load-able) and result.json.
#include <fstream>

#include <ATen/Context.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "nas/cost.hpp"
#include "nas/log.hpp"
#include "nas/trainer.hpp"
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
  DatasetInfo info = train_set->info();

  const std::string& genotype_file = p.get<std::string>("genotype");
  const std::string genotype = read_file(genotype_file);
  space->canonical(genotype, genotype_file);  // checks the file, naming it
  ModelSpec spec;
  spec.layout = p.get<std::string>("layout");
  spec.cells_per_stage = p.get<std::int64_t>("N");
  spec.penultimate_filters = p.get<std::int64_t>("F");
  spec.num_classes = static_cast<std::int64_t>(info.class_names.size());
  spec.input_channels = info.channels;
  spec.stem_multiplier = p.get<double>("stem_multiplier");
  spec.dropout = p.get<double>("dropout");
  spec.aux_head = p.get<bool>("aux_head");
  at::manual_seed(context.seed);  // weight initialization, drop path and dropout draw from it
  std::shared_ptr<Network> network = space->build(genotype, spec);

  // Data: the held-out validation split (the search's reward), an optional per-class subset, test.
  const auto seed = context.seed;
  SplitIndices split = hold_out(*train_set, p.get<std::int64_t>("validation"), seed);
  if (std::int64_t k = p.get<std::int64_t>("subset_per_class"); k > 0) split.train = first_per_class(*train_set, split.train, k);
  LoaderOptions data;
  data.batch_size = p.get<std::int64_t>("batch_size");
  data.workers = p.get<std::int64_t>("workers");
  if (p.get<bool>("normalize")) {
    data.mean = info.mean;
    data.std = info.std;
  }
  LoaderOptions eval = data;
  data.train = true;
  data.augmentation = {p.get<std::int64_t>("crop_padding"), p.get<bool>("flip")};
  std::vector<std::int64_t> test_indices(static_cast<std::size_t>(test_set->size()));
  for (std::size_t i = 0; i < test_indices.size(); ++i) test_indices[i] = static_cast<std::int64_t>(i);
  Loader train_loader(*train_set, split.train, data, seed);
  std::optional<Loader> validation_loader;
  if (!split.validation.empty()) validation_loader.emplace(*train_set, split.validation, eval, seed);
  Loader test_loader(*test_set, test_indices, eval, seed);

  std::vector<std::unique_ptr<Regularizer>> regularizers;
  std::vector<Regularizer*> active;
  for (const PluginChoice& r : stage.slots.at("regularizers")) {
    regularizers.push_back(registry.create<Regularizer>(r.entry->name, r.params, context, {}));
    active.push_back(regularizers.back().get());
  }

  TrainOptions options;
  options.epochs = p.get<std::int64_t>("epochs");
  options.lr = p.get<double>("lr");
  options.min_lr = p.get<double>("min_lr");
  options.warmup_epochs = p.get<double>("warmup_epochs");
  options.momentum = p.get<double>("momentum");
  options.nesterov = p.get<bool>("nesterov");
  options.weight_decay = p.get<double>("weight_decay");
  options.label_smoothing = p.get<double>("label_smoothing");
  options.grad_clip = p.get<double>("grad_clip");
  options.aux_weight = p.get<double>("aux_weight");
  options.bf16 = p.get<bool>("bf16");
  options.channels_last = p.get<bool>("channels_last");

  ModelCost cost = measure_cost(*network, {info.channels, info.height, info.width});
  context.log.info("training {}@{} ({:.2f}M parameters, {:.1f}M mult-adds) on {}: {} training, {} validation, "
                   "{} test examples, {} epochs of {} steps", spec.cells_per_stage, spec.penultimate_filters,
                   cost.params / 1e6, cost.mult_adds / 1e6, data_choice.entry->key, train_loader.examples(),
                   split.validation.size(), test_loader.examples(), options.epochs, train_loader.batches_per_epoch());

  Trainer trainer(*network, options, active, context, context.run_dir / "checkpoint.pt");
  TrainResult result = trainer.fit(train_loader, validation_loader ? &*validation_loader : nullptr);
  nlohmann::ordered_json report{{"genotype", genotype_file}, {"hash", architecture_hash(*space, genotype)},
                                {"params", cost.params},     {"mult_adds", cost.mult_adds},
                                {"diverged", result.diverged}, {"steps", result.steps},
                                {"train_images_per_s", result.images_per_second}};
  if (result.diverged) {
    report["diverged_step"] = result.diverged_step;
    context.log.warn("training diverged at step {}; no test accuracy", result.diverged_step);
  } else {
    Metrics test = trainer.evaluate(test_loader);
    report["validation_top1"] = result.validation.top1;
    report["test_top1"] = test.top1;
    report["test_top5"] = test.top5;
    trainer.save_weights(context.run_dir / "weights.pt");
    context.log.info("test accuracy: {:.2f}% top-1, {:.2f}% top-5 ({} images); weights in {}", 100 * test.top1,
                     100 * test.top5, test.examples, (context.run_dir / "weights.pt").string());
  }
  std::ofstream(context.run_dir / "result.json") << report.dump(2) << "\n";
}

}  // namespace

StageDef train() {
  using namespace param;
  return StageDef{
      "train",
      "trains a genotype's network on a dataset and reports test accuracy",
      {path("genotype").help("genotype file"),
       choice("layout", {"cifar", "imagenet"}, "cifar").help("network layout"),
       integer("N", 2).range(1, 100).help("normal cells per stage"),
       integer("F", 96).range(4, 100000).help("filters of the penultimate layer"),
       number("stem_multiplier", 3.0).range(0.1, 100).help("stem width multiplier"),
       number("dropout", 0.0).range(0, 0.99).help("dropout before the classifier"),
       boolean("aux_head", false).help("auxiliary head after stage 2"),
       integer("epochs", 10).range(1, 100000).help("training epochs"),
       integer("batch_size", 64).range(1, 65536).help("examples per step"),
       number("lr", 0.025).range(0, 100).help("peak learning rate (SGD)"),
       number("min_lr", 0.0).range(0, 100).help("learning rate at the end of the cosine schedule"),
       number("warmup_epochs", 0.0).range(0, 1000).help("linear warmup from 0"),
       number("momentum", 0.9).range(0, 1).help("SGD momentum"),
       boolean("nesterov", false).help("Nesterov momentum"),
       number("weight_decay", 3e-4).range(0, 1).help("L2 weight decay"),
       number("label_smoothing", 0.0).range(0, 1).help("label smoothing"),
       number("grad_clip", 5.0).range(0, 1e9).help("max gradient norm; 0: no clipping"),
       number("aux_weight", 0.4).range(0, 100).help("weight of the auxiliary head's loss"),
       boolean("bf16", false).help("bf16 autocast (GPU only)"),
       boolean("channels_last", true).help("channels_last memory format (faster with oneDNN on CPU too)"),
       integer("validation", 5000).at_least(0).help("training examples held out for validation (chosen by the seed)"),
       integer("subset_per_class", 0).at_least(0).help("train on the first K examples of each class; 0: all"),
       integer("crop_padding", 0).at_least(0).help("random crop with this much zero padding; 0: none"),
       boolean("flip", false).help("random horizontal flips"),
       boolean("normalize", true).help("normalize with the dataset's per-channel mean and std"),
       integer("workers", 1).range(0, 64).help("data loading threads (one keeps ahead of a CPU trainer; more for GPUs)")},
      {Slot{"space", "space", true, false, "the search space that reads the genotype"},
       Slot{"dataset", "dataset", true, false, "the data to train and test on"},
       Slot{"regularizers", "regularizer", false, true, "regularizers, applied in order"}},
      run,
  };
}

}  // namespace nas::stages
