// A training recipe: the optimizer and schedule, and how the data is held out, subset and augmented;
// the network's size comes from the space's model parameters beside it. The train stage and the train
// evaluator share its parameters and run it the same way, so a searched child and a retrained one
// differ only in the numbers.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "nas/api.hpp"
#include "nas/context.hpp"
#include "nas/cost.hpp"
#include "nas/options.hpp"
#include "nas/schema.hpp"
#include "nas/trainer.hpp"

namespace nas {

class Dataset;
class ProcessGroup;
class Regularizer;
class Space;

/// How the data reaches the trainer: the held-out split, the subset, augmentation and batches.
struct DataOptions {
  std::int64_t batch_size = 64;
  std::int64_t validation = 5000;
  std::int64_t subset_per_class = 0;
  std::int64_t crop_padding = 0;
  bool flip = false;
  bool normalize = true;
  std::int64_t workers = 1;

  static auto fields() {
    using O = DataOptions;
    return std::tuple{
        field("batch_size", &O::batch_size).range(1, 65536).help("examples per step"),
        field("validation", &O::validation).at_least(0).help("training examples held out for validation (chosen by the seed)"),
        field("subset_per_class", &O::subset_per_class).at_least(0).help("train on the first K examples of each class; 0: all"),
        field("crop_padding", &O::crop_padding).at_least(0).help("random crop with this much zero padding; 0: none"),
        field("flip", &O::flip).help("random horizontal flips"),
        field("normalize", &O::normalize).help("normalize with the dataset's per-channel mean and std"),
        field("workers", &O::workers).range(0, 64).help("data loading threads (one keeps ahead of a CPU trainer; more "
                                                        "for GPUs; 0: batches built on the training thread)")};
  }
};

/// The whole recipe: its parameters are those of its two parts, side by side in one config section,
/// which also holds the model parameters of the space (its ModelFamily: N, F, ... for NASNet).
struct Recipe {
  TrainOptions training;
  DataOptions data;

  static Recipe from(const Params& params) { return {options_from<TrainOptions>(params), options_from<DataOptions>(params)}; }
};

/// The recipe's parameters (epochs, lr, batch_size, validation, subset_per_class, ...): its parts'.
inline Schema recipe_schema() { return join({schema_of<TrainOptions>(), schema_of<DataOptions>()}); }

/// A network of `genotype` built with the space's model parameters in `params` and trained by the
/// recipe in `params` (validated against recipe_schema() and the space's model schema) on the
/// training split of `train_set`, holding out the recipe's validation examples.
class NAS_API ChildTraining {
 public:
  /// `context.seed` chooses the held-out split (the same for every child of a search); `seed`
  /// initializes the weights and orders the batches. `checkpoint`: see Trainer. `data_parallel`:
  /// across every process of the group (see Trainer), each training on its share of every global
  /// batch of batch_size (the same steps as on one process), and evaluating its share of the test and
  /// validation sets.
  ChildTraining(const Space& space, const std::string& genotype, const Params& params, const Dataset& train_set,
                std::vector<Regularizer*> regularizers, const Context& context, std::uint64_t seed,
                std::filesystem::path checkpoint = {}, const ProcessGroup* data_parallel = nullptr);
  ~ChildTraining();
  ChildTraining(const ChildTraining&) = delete;
  ChildTraining& operator=(const ChildTraining&) = delete;

  const ModelCost& cost() const;
  std::int64_t train_examples() const;
  std::int64_t validation_examples() const;
  std::int64_t epochs() const;
  std::int64_t batches_per_epoch() const;

  /// Trains for the recipe's epochs, or to the end of epoch `until_epoch` (see Trainer::fit);
  /// result.validation holds the held-out accuracy when there is a split.
  TrainResult fit(std::int64_t until_epoch = 0);
  /// Accuracy on every example of `test_set`, with the recipe's normalization.
  Metrics test(const Dataset& test_set);
  void save_weights(const std::filesystem::path& path) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace nas
