#include "nas/recipe.hpp"

#include <optional>

#include <ATen/Context.h>

#include "nas/data.hpp"
#include "nas/dataset.hpp"
#include "nas/space.hpp"
#include "cluster.hpp"

namespace nas {

Schema recipe_schema() {
  using namespace param;
  return {choice("layout", {"cifar", "imagenet"}, "cifar").help("network layout"),
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
          boolean("bf16", false).help("bf16 autocast of the forward pass (meant for GPUs; see docs/training.md)"),
          boolean("channels_last", true).help("channels_last memory format (faster with oneDNN on CPU too)"),
          integer("validation", 5000).at_least(0).help("training examples held out for validation (chosen by the seed)"),
          integer("subset_per_class", 0).at_least(0).help("train on the first K examples of each class; 0: all"),
          integer("crop_padding", 0).at_least(0).help("random crop with this much zero padding; 0: none"),
          boolean("flip", false).help("random horizontal flips"),
          boolean("normalize", true).help("normalize with the dataset's per-channel mean and std"),
          integer("workers", 1).range(0, 64).help("data loading threads (one keeps ahead of a CPU trainer; more for GPUs; "
                                                  "0: batches built on the training thread)")};
}

struct ChildTraining::State {
  LoaderOptions eval_data;
  std::uint64_t seed = 0;
  std::int64_t epochs = 0;
  std::shared_ptr<Network> network;
  ModelCost cost;
  std::optional<Loader> train_loader, validation_loader;
  std::optional<Trainer> trainer;
};

ChildTraining::ChildTraining(const Space& space, const std::string& genotype, const Params& p, const Dataset& train_set,
                             std::vector<Regularizer*> regularizers, const Context& context, std::uint64_t seed,
                             std::filesystem::path checkpoint, bool data_parallel)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.seed = seed;
  const DatasetInfo info = train_set.info();
  ModelSpec spec;
  spec.layout = p.get<std::string>("layout");
  spec.cells_per_stage = p.get<std::int64_t>("N");
  spec.penultimate_filters = p.get<std::int64_t>("F");
  spec.num_classes = static_cast<std::int64_t>(info.class_names.size());
  spec.input_channels = info.channels;
  spec.stem_multiplier = p.get<double>("stem_multiplier");
  spec.dropout = p.get<double>("dropout");
  spec.aux_head = p.get<bool>("aux_head");
  at::manual_seed(seed);  // weight initialization, drop path and dropout draw from it
  s.network = space.build(genotype, spec);
  s.cost = measure_cost(*s.network, {info.channels, info.height, info.width});

  SplitIndices split = hold_out(train_set, p.get<std::int64_t>("validation"), context.seed);
  if (std::int64_t k = p.get<std::int64_t>("subset_per_class"); k > 0) split.train = first_per_class(train_set, split.train, k);
  LoaderOptions data;
  data.batch_size = p.get<std::int64_t>("batch_size");
  data.workers = p.get<std::int64_t>("workers");
  if (data_parallel && context.cluster) {
    data.shard = context.cluster->world().rank;
    data.shards = context.cluster->world().size;
  }
  if (p.get<bool>("normalize")) {
    data.mean = info.mean;
    data.std = info.std;
  }
  s.eval_data = data;
  data.train = true;
  data.augmentation = {p.get<std::int64_t>("crop_padding"), p.get<bool>("flip")};
  s.train_loader.emplace(train_set, split.train, data, seed);
  if (!split.validation.empty()) s.validation_loader.emplace(train_set, split.validation, s.eval_data, seed);

  TrainOptions options;
  options.epochs = s.epochs = p.get<std::int64_t>("epochs");
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
  options.data_parallel = data_parallel;
  s.trainer.emplace(*s.network, options, std::move(regularizers), context, std::move(checkpoint));
}

ChildTraining::~ChildTraining() = default;

const ModelCost& ChildTraining::cost() const { return state_->cost; }
std::int64_t ChildTraining::train_examples() const { return state_->train_loader->examples(); }
std::int64_t ChildTraining::validation_examples() const {
  return state_->validation_loader ? state_->validation_loader->examples() : 0;
}
std::int64_t ChildTraining::epochs() const { return state_->epochs; }
std::int64_t ChildTraining::batches_per_epoch() const { return state_->train_loader->batches_per_epoch(); }

TrainResult ChildTraining::fit() {
  return state_->trainer->fit(*state_->train_loader, state_->validation_loader ? &*state_->validation_loader : nullptr);
}

Metrics ChildTraining::test(const Dataset& test_set) {
  std::vector<std::int64_t> indices(static_cast<std::size_t>(test_set.size()));
  for (std::size_t i = 0; i < indices.size(); ++i) indices[i] = static_cast<std::int64_t>(i);
  Loader loader(test_set, std::move(indices), state_->eval_data, state_->seed);
  return state_->trainer->evaluate(loader);
}

void ChildTraining::save_weights(const std::filesystem::path& path) const { state_->trainer->save_weights(path); }

}  // namespace nas
