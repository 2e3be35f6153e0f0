// The training engine: trains every child during a search and the final transferred model.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "nas/api.hpp"
#include "nas/context.hpp"
#include "nas/data.hpp"
#include "nas/options.hpp"
#include "nas/regularizer.hpp"
#include "nas/space.hpp"

namespace nas {

class ProcessGroup;
class Reducer;

/// How the trainer trains: the optimizer, its schedule and the step. Its fields() are the training
/// part of the recipe's schema (recipe.hpp), so each default lives here alone.
struct TrainOptions {
  std::int64_t epochs = 10;
  double lr = 0.025;               ///< peak learning rate, reached after the warmup
  double min_lr = 0.0;             ///< where the cosine schedule ends
  double warmup_epochs = 0.0;      ///< linear warmup from 0
  double momentum = 0.9;
  bool nesterov = false;
  double weight_decay = 3e-4;
  double label_smoothing = 0.0;
  double grad_clip = 5.0;          ///< max gradient norm; 0: no clipping
  double aux_weight = 0.4;         ///< weight of the auxiliary head's loss, when the network has one
  bool bf16 = false;               ///< bf16 autocast of the forward pass, on any device (meant for GPUs)
  bool channels_last = true;
  std::int64_t precise_bn_batches = 8;  ///< see fields()
  std::int64_t log_every = 20;     ///< steps between metrics lines (not a parameter)

  static auto fields() {
    using O = TrainOptions;
    return std::tuple{
        field("epochs", &O::epochs).range(1, 100000).help("training epochs"),
        field("lr", &O::lr).range(0, 100).help("peak learning rate (SGD)"),
        field("min_lr", &O::min_lr).range(0, 100).help("learning rate at the end of the cosine schedule"),
        field("warmup_epochs", &O::warmup_epochs).range(0, 1000).help("linear warmup from 0"),
        field("momentum", &O::momentum).range(0, 1).help("SGD momentum"),
        field("nesterov", &O::nesterov).help("Nesterov momentum"),
        field("weight_decay", &O::weight_decay).range(0, 1).help("L2 weight decay"),
        field("label_smoothing", &O::label_smoothing).range(0, 1).help("label smoothing"),
        field("grad_clip", &O::grad_clip).range(0, 1e9).help("max gradient norm; 0: no clipping"),
        field("aux_weight", &O::aux_weight).range(0, 100).help("weight of the auxiliary head's loss"),
        field("bf16", &O::bf16).help("bf16 autocast of the forward pass (meant for GPUs; see docs/training.md)"),
        field("channels_last", &O::channels_last).help("channels_last memory format (faster with oneDNN on CPU too)"),
        field("precise_bn_batches", &O::precise_bn_batches)
            .range(0, 1000000)
            .help("before each validation (and after the last epoch), BatchNorm statistics re-estimated on this many "
                  "training batches at the current weights; 0: the running averages (see docs/training.md)")};
  }
};

struct Metrics {
  double loss = 0.0;
  double top1 = 0.0;  ///< fractions in [0, 1]
  double top5 = 0.0;
  std::int64_t examples = 0;
};

struct TrainResult {
  bool diverged = false;          ///< the loss became NaN or infinite: a failed child, not a crash
  std::int64_t diverged_step = -1;
  std::int64_t steps = 0;         ///< steps done in total (a resumed run counts those before the resume)
  Metrics train;                  ///< running metrics of the last epoch
  Metrics validation;             ///< after the last epoch, when a validation loader was given
  double seconds = 0.0;           ///< of this call
  double images_per_second = 0.0; ///< training throughput of this call
};

class NAS_API Trainer {
 public:
  /// `checkpoint`: file to save after every epoch and to resume from when it exists (empty: none).
  /// Metrics go to context.run_dir/metrics.jsonl when run_dir is set. `data_parallel`: train across
  /// every process of the group, which must all construct their Trainer and call fit()/evaluate()
  /// alike, with loaders sharded by rank (LoaderOptions::shard): gradients are averaged over the
  /// ranks, metrics summed; rank 0 alone writes checkpoints and metrics.
  Trainer(Network& network, TrainOptions options, std::vector<Regularizer*> regularizers, const Context& context,
          std::filesystem::path checkpoint = {}, const ProcessGroup* data_parallel = nullptr);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  /// Trains to the end of the options' epochs, or of epoch `until_epoch` (from 1) when it is set: a
  /// checkpointed training continues from where it stopped, on the schedule of all the epochs.
  TrainResult fit(const Loader& train, const Loader* validation = nullptr, std::int64_t until_epoch = 0);
  Metrics evaluate(const Loader& loader);

  /// The weights as a state dict of named tensors (parameters and buffers), readable from Python
  /// with `torch.load(path)`.
  void save_weights(const std::filesystem::path& path) const;

 private:
  void recalibrate_batch_norm(const Loader& train, std::int64_t epoch);

  Network& network_;
  TrainOptions options_;
  std::vector<Regularizer*> regularizers_;
  const Context& context_;
  std::filesystem::path checkpoint_;
  std::unique_ptr<Reducer> reducer_;  ///< with a data_parallel group of several processes
  std::int64_t rank_ = 0, ranks_ = 1;
};

}  // namespace nas
