// A training recipe: the network's size (N@F), the optimizer and schedule, and how the data is held
// out, subset and augmented. The train stage and the train evaluator share its parameters and run it
// the same way, so a searched child and a retrained one differ only in the numbers.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "nas/api.hpp"
#include "nas/context.hpp"
#include "nas/cost.hpp"
#include "nas/schema.hpp"
#include "nas/trainer.hpp"

namespace nas {

class Dataset;
class Regularizer;
class Space;

/// The recipe's parameters (layout, N, F, epochs, batch_size, lr, validation, subset_per_class, ...).
NAS_API Schema recipe_schema();

/// A network of `genotype` built by the recipe in `params` (validated against recipe_schema()) and
/// trained on the training split of `train_set`, holding out the recipe's validation examples.
class NAS_API ChildTraining {
 public:
  /// `context.seed` chooses the held-out split (the same for every child of a search); `seed`
  /// initializes the weights and orders the batches. `checkpoint`: see Trainer. `data_parallel`:
  /// across every process of context.cluster (see TrainOptions), each training on its share of every
  /// global batch of batch_size (the same steps as on one process), and evaluating its share of the
  /// test and validation sets.
  ChildTraining(const Space& space, const std::string& genotype, const Params& params, const Dataset& train_set,
                std::vector<Regularizer*> regularizers, const Context& context, std::uint64_t seed,
                std::filesystem::path checkpoint = {}, bool data_parallel = false);
  ~ChildTraining();
  ChildTraining(const ChildTraining&) = delete;
  ChildTraining& operator=(const ChildTraining&) = delete;

  const ModelCost& cost() const;
  std::int64_t train_examples() const;
  std::int64_t validation_examples() const;
  std::int64_t epochs() const;
  std::int64_t batches_per_epoch() const;

  /// Trains for the recipe's epochs; result.validation holds the held-out accuracy when there is a split.
  TrainResult fit();
  /// Accuracy on every example of `test_set`, with the recipe's normalization.
  Metrics test(const Dataset& test_set);
  void save_weights(const std::filesystem::path& path) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace nas
