// The data pipeline between a dataset and the trainer: held-out validation split, per-class subsets,
// augmentation and batches built ahead on worker threads, deterministic for a seed.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include <ATen/core/Tensor.h>

#include "nas/api.hpp"
#include "nas/dataset.hpp"

namespace nas {

/// Training indices of a dataset's train split, and the held-out validation indices (the paper
/// holds out 5,000 training images for the reward), chosen by the seed.
struct SplitIndices {
  std::vector<std::int64_t> train, validation;
};
NAS_API SplitIndices hold_out(const Dataset& train_split, std::int64_t validation, std::uint64_t seed);

/// The first `k` examples of each class among `indices`, in their order (for cheap proxy tasks).
NAS_API std::vector<std::int64_t> first_per_class(const Dataset& dataset, const std::vector<std::int64_t>& indices,
                                                  std::int64_t k);

struct Augmentation {
  std::int64_t crop_padding = 0;  ///< random crop of the original size from the image zero-padded this much
  bool flip = false;              ///< random horizontal flip
};

struct Batch {
  at::Tensor images;  ///< float (N, C, H, W), normalized
  at::Tensor labels;  ///< int64 (N)
};

struct LoaderOptions {
  std::int64_t batch_size = 32;
  bool train = false;              ///< shuffle, augment and drop the last partial batch
  Augmentation augmentation;       ///< applied when `train`
  std::vector<double> mean, std;   ///< per-channel normalization; empty: none
  std::int64_t workers = 1;        ///< threads building batches ahead; 0: build on the caller's thread
  std::int64_t prefetch = 4;       ///< batches built ahead per worker at most
  /// Batches in page-locked memory, which a GPU copies from directly, without a staging copy and
  /// without the caller waiting (training on CUDA; needs a CUDA build of LibTorch). Up to
  /// workers x prefetch batches are pinned at once, and LibTorch keeps the pages for reuse.
  bool pin_memory = false;
  /// Data-parallel training: this process's share. Training: its slice of each global batch of
  /// `batch_size` examples (the same order on every shard; slices differ by one example at most), so
  /// that any number of processes takes the same steps; evaluation: every shards-th batch.
  std::int64_t shard = 0, shards = 1;
};

class NAS_API Loader {
 public:
  Loader(const Dataset& dataset, std::vector<std::int64_t> indices, LoaderOptions options, std::uint64_t seed);

  std::int64_t batches_per_epoch() const;
  std::int64_t examples() const { return static_cast<std::int64_t>(indices_.size()); }
  /// Examples in a (global) batch: of all shards together in training.
  std::int64_t batch_size() const { return options_.batch_size; }

  /// Batch `index` of `epoch`: a function of (seed, epoch, index) only, whichever thread builds it,
  /// so a resumed run reads exactly what an uninterrupted one does.
  Batch batch(std::int64_t epoch, std::int64_t index) const;

  /// Hands `consume` the batches of `epoch` from `first` on, in order, while workers build the next
  /// ones; stops early when `consume` returns false. Rethrows a worker's exception.
  void for_each(std::int64_t epoch, std::int64_t first, const std::function<bool(std::int64_t, Batch&)>& consume) const;

 private:
  std::vector<std::int64_t> order(std::int64_t epoch) const;
  Batch build(const std::vector<std::int64_t>& order, std::int64_t epoch, std::int64_t index) const;

  const Dataset& dataset_;
  std::vector<std::int64_t> indices_;
  LoaderOptions options_;
  std::uint64_t seed_;
};

}  // namespace nas
