#include "nas/recipe.hpp"

#include <optional>

#include <ATen/Context.h>

#include "nas/data.hpp"
#include "nas/dataset.hpp"
#include "nas/space.hpp"
#include "nas/reducer.hpp"

namespace nas {

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
                             std::filesystem::path checkpoint, const ProcessGroup* data_parallel)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.seed = seed;
  const DatasetInfo info = train_set.info();
  const Recipe recipe = Recipe::from(p);
  const DataShape data_shape{static_cast<std::int64_t>(info.class_names.size()), info.channels, info.height, info.width};
  // Weight initialization, drop path and dropout draw from torch's generator: `seed` (derived by the
  // caller from the experiment seed) makes them the same for the same child.
  at::manual_seed(seed);
  s.network = space.build(genotype, p, data_shape);
  s.cost = measure_cost(*s.network, {info.channels, info.height, info.width});

  SplitIndices split = hold_out(train_set, recipe.data.validation, context.seed);
  if (recipe.data.subset_per_class > 0) split.train = first_per_class(train_set, split.train, recipe.data.subset_per_class);
  LoaderOptions data;
  data.batch_size = recipe.data.batch_size;
  data.workers = recipe.data.workers;
  data.pin_memory = context.device.is_cuda();
  if (data_parallel) {
    data.shard = data_parallel->rank();
    data.shards = data_parallel->size();
  }
  if (recipe.data.normalize) {
    data.mean = info.mean;
    data.std = info.std;
  }
  s.eval_data = data;
  data.train = true;
  data.augmentation = {recipe.data.crop_padding, recipe.data.flip};
  s.train_loader.emplace(train_set, split.train, data, seed);
  if (!split.validation.empty()) s.validation_loader.emplace(train_set, split.validation, s.eval_data, seed);

  s.epochs = recipe.training.epochs;
  s.trainer.emplace(*s.network, recipe.training, std::move(regularizers), context, std::move(checkpoint), data_parallel);
}

ChildTraining::~ChildTraining() = default;

const ModelCost& ChildTraining::cost() const { return state_->cost; }
std::int64_t ChildTraining::train_examples() const { return state_->train_loader->examples(); }
std::int64_t ChildTraining::validation_examples() const {
  return state_->validation_loader ? state_->validation_loader->examples() : 0;
}
std::int64_t ChildTraining::epochs() const { return state_->epochs; }
std::int64_t ChildTraining::batches_per_epoch() const { return state_->train_loader->batches_per_epoch(); }

TrainResult ChildTraining::fit(std::int64_t until_epoch) {
  return state_->trainer->fit(*state_->train_loader, state_->validation_loader ? &*state_->validation_loader : nullptr,
                              until_epoch);
}

Metrics ChildTraining::test(const Dataset& test_set) {
  std::vector<std::int64_t> indices(static_cast<std::size_t>(test_set.size()));
  for (std::size_t i = 0; i < indices.size(); ++i) indices[i] = static_cast<std::int64_t>(i);
  Loader loader(test_set, std::move(indices), state_->eval_data, state_->seed);
  return state_->trainer->evaluate(loader);
}

void ChildTraining::save_weights(const std::filesystem::path& path) const { state_->trainer->save_weights(path); }

}  // namespace nas
