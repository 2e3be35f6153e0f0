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
#include "nas/regularizer.hpp"
#include "nas/space.hpp"

namespace nas {

class DataParallel;

struct TrainOptions {
  std::int64_t epochs = 1;
  double lr = 0.025;               ///< peak learning rate, reached after the warmup
  double min_lr = 0.0;             ///< where the cosine schedule ends
  double warmup_epochs = 0.0;      ///< linear warmup from 0
  double momentum = 0.9;
  bool nesterov = false;
  double weight_decay = 3e-4;
  double label_smoothing = 0.0;
  double grad_clip = 0.0;          ///< max gradient norm; 0: no clipping
  double aux_weight = 0.4;         ///< weight of the auxiliary head's loss, when the network has one
  bool bf16 = false;               ///< bf16 autocast of the forward pass, on any device (meant for GPUs)
  bool channels_last = false;
  std::int64_t log_every = 20;     ///< steps between metrics lines
  /// Train across every process of context.cluster, which must all construct their Trainer and call
  /// fit()/evaluate() alike, with loaders sharded by rank (LoaderOptions::shard): gradients are
  /// averaged over the ranks, metrics summed; rank 0 alone writes checkpoints and metrics.
  bool data_parallel = false;
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
  /// Metrics go to context.run_dir/metrics.jsonl when run_dir is set.
  Trainer(Network& network, TrainOptions options, std::vector<Regularizer*> regularizers, const Context& context,
          std::filesystem::path checkpoint = {});
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  TrainResult fit(const Loader& train, const Loader* validation = nullptr);
  Metrics evaluate(const Loader& loader);

  /// The weights as a state dict of named tensors (parameters and buffers), readable from Python
  /// with `torch.load(path)`.
  void save_weights(const std::filesystem::path& path) const;

 private:
  Network& network_;
  TrainOptions options_;
  std::vector<Regularizer*> regularizers_;
  const Context& context_;
  std::filesystem::path checkpoint_;
  std::unique_ptr<DataParallel> parallel_;  ///< with options.data_parallel on several processes
};

}  // namespace nas
