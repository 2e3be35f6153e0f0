// The data pipeline: splits, augmentation, batches built ahead on worker threads.
#include "nas/data.hpp"

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <numeric>
#include <random>
#include <thread>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <fmt/format.h>

#include "nas/error.hpp"
#include "nas/seed.hpp"

// The OpenMP runtime's (libgomp, linked explicitly: cmake/NasDependencies.cmake), declared here
// rather than through omp.h, which is the compiler's own header (clang has none without libomp-dev).
extern "C" void omp_set_num_threads(int threads);

namespace nas {
namespace {

// The loader's streams (nas/seed.hpp); their numbers are the ASCII of their names, kept as they were
// so that splits and batches stay those of earlier versions.
constexpr std::uint64_t kHoldOutStream = 0x76616c;       // "val"
constexpr std::uint64_t kOrderStream = 0x6f72646572;     // "order"
constexpr std::uint64_t kAugmentStream = 0x61756720;     // "aug "

}  // namespace

SplitIndices hold_out(const Dataset& train_split, std::int64_t validation, std::uint64_t seed) {
  std::int64_t n = train_split.size();
  if (validation < 0 || validation >= n)
    throw UsageError(fmt::format("cannot hold out {} of {} training examples for validation", validation, n));
  std::vector<std::int64_t> all(static_cast<std::size_t>(n));
  std::iota(all.begin(), all.end(), 0);
  std::mt19937_64 rng = generator(seed, kHoldOutStream, 0);
  std::shuffle(all.begin(), all.end(), rng);
  SplitIndices split;
  split.validation.assign(all.begin(), all.begin() + validation);
  split.train.assign(all.begin() + validation, all.end());
  std::sort(split.validation.begin(), split.validation.end());
  std::sort(split.train.begin(), split.train.end());
  return split;
}

std::vector<std::int64_t> first_per_class(const Dataset& dataset, const std::vector<std::int64_t>& indices,
                                          std::int64_t k) {
  std::map<std::int64_t, std::int64_t> taken;
  std::vector<std::int64_t> out;
  for (std::int64_t i : indices)
    if (taken[dataset.label(i)]++ < k) out.push_back(i);
  return out;
}

Loader::Loader(const Dataset& dataset, std::vector<std::int64_t> indices, LoaderOptions options, std::uint64_t seed)
    : dataset_(dataset), indices_(std::move(indices)), options_(std::move(options)), seed_(seed) {
  if (options_.batch_size < 1) throw UsageError("batch size must be at least 1");
  if (options_.shards < 1 || options_.shard < 0 || options_.shard >= options_.shards)
    throw UsageError(fmt::format("shard {} of {}: expected 0 <= shard < shards", options_.shard, options_.shards));
  if (options_.train && options_.batch_size < options_.shards)
    throw UsageError(fmt::format("a batch of {} cannot be shared among {} data-parallel processes; use a batch size of "
                                 "at least {}", options_.batch_size, options_.shards, options_.shards));
  if (options_.train && examples() < options_.batch_size)
    throw UsageError(fmt::format("{} training examples are fewer than one batch of {}", examples(), options_.batch_size));
}

std::int64_t Loader::batches_per_epoch() const {
  const std::int64_t n = examples(), b = options_.batch_size, shards = options_.shards;
  if (options_.train) return n / b;
  return ((n + b - 1) / b - options_.shard + shards - 1) / shards;
}

std::vector<std::int64_t> Loader::order(std::int64_t epoch) const {
  std::vector<std::int64_t> order = indices_;
  if (options_.train) {
    std::mt19937_64 rng = generator(seed_, kOrderStream, static_cast<std::uint64_t>(epoch));
    std::shuffle(order.begin(), order.end(), rng);
  }
  return order;
}

Batch Loader::batch(std::int64_t epoch, std::int64_t index) const { return build(order(epoch), epoch, index); }

Batch Loader::build(const std::vector<std::int64_t>& order, std::int64_t epoch, std::int64_t index) const {
  // With shards, this process's share: the shard-th slice of a global training batch, or the
  // (index * shards + shard)-th evaluation batch.
  const std::int64_t b = options_.batch_size, shard = options_.shard, shards = options_.shards;
  const std::int64_t begin = options_.train ? index * b + b * shard / shards : (index * shards + shard) * b;
  const std::int64_t end = options_.train ? index * b + b * (shard + 1) / shards
                                          : std::min<std::int64_t>(begin + b, static_cast<std::int64_t>(order.size()));
  std::vector<at::Tensor> images;
  std::vector<std::int64_t> labels;
  const std::int64_t pad = options_.augmentation.crop_padding;
  for (std::int64_t position = begin; position < end; ++position) {
    Example example = dataset_.get(order[position]);
    at::Tensor image = example.image;
    if (options_.train && (pad > 0 || options_.augmentation.flip)) {
      // Per (epoch, position): the epoch's augmentation seed, then the example's stream in it.
      std::mt19937_64 rng = generator(derive_seed(seed_, kAugmentStream, static_cast<std::uint64_t>(epoch)),
                                      kAugmentStream, static_cast<std::uint64_t>(position));
      if (pad > 0) {
        std::uniform_int_distribution<std::int64_t> offset(0, 2 * pad);
        std::int64_t dy = offset(rng), dx = offset(rng);
        image = at::constant_pad_nd(image, {pad, pad, pad, pad}).narrow(1, dy, image.size(1)).narrow(2, dx, image.size(2));
      }
      if (options_.augmentation.flip && std::bernoulli_distribution(0.5)(rng)) image = image.flip({2});
    }
    images.push_back(image);
    labels.push_back(example.label);
  }
  at::Tensor stacked = at::stack(images);
  if (!options_.mean.empty()) {
    auto channels = static_cast<std::int64_t>(options_.mean.size());
    at::Tensor mean = at::tensor(options_.mean, at::kFloat).view({1, channels, 1, 1});
    at::Tensor std = at::tensor(options_.std, at::kFloat).view({1, channels, 1, 1});
    stacked = (stacked - mean) / std;
  }
  Batch batch{stacked.contiguous(), at::tensor(labels, at::kLong)};
  if (options_.pin_memory) {  // on the worker thread, so that the trainer's copy to the GPU needs no staging
    batch.images = batch.images.pin_memory();
    batch.labels = batch.labels.pin_memory();
  }
  return batch;
}

void Loader::for_each(std::int64_t epoch, std::int64_t first, const std::function<bool(std::int64_t, Batch&)>& consume) const {
  const std::int64_t end = batches_per_epoch();
  const std::vector<std::int64_t> epoch_order = order(epoch);
  if (options_.workers == 0) {
    for (std::int64_t b = first; b < end; ++b) {
      Batch batch = build(epoch_order, epoch, b);
      if (!consume(b, batch)) return;
    }
    return;
  }
  // Workers take batch numbers in order and build up to `window` batches ahead of the consumer.
  const std::int64_t window = std::max<std::int64_t>(1, options_.workers * options_.prefetch);
  std::mutex mutex;
  std::condition_variable changed;
  std::map<std::int64_t, Batch> ready;
  std::int64_t next = first, consumed = first;
  bool stop = false;
  std::exception_ptr failure;
  auto work = [&] {
    // Serial ATen ops on this thread. Were they to start an OpenMP team of their own, the process
    // would hold more OpenMP threads than cores, and libgomp then stops spin-waiting in every team,
    // the training thread's included: its helpers sleep and are woken at each parallel region
    // (measured: ~5,000 context switches a second per thread, tiny children training at half speed).
    at::get_num_threads();  // ATen's lazy per-thread setup first: it would set the team size back
    omp_set_num_threads(1);
    for (;;) {
      std::int64_t b;
      {
        std::unique_lock lock(mutex);
        changed.wait(lock, [&] { return stop || next >= end || next < consumed + window; });
        if (stop || next >= end) return;
        b = next++;
      }
      try {
        Batch batch = build(epoch_order, epoch, b);
        std::lock_guard lock(mutex);
        ready.emplace(b, std::move(batch));
      } catch (...) {
        std::lock_guard lock(mutex);
        if (!failure) failure = std::current_exception();
        stop = true;
      }
      changed.notify_all();
    }
  };
  std::vector<std::thread> workers;
  for (std::int64_t w = 0; w < options_.workers; ++w) workers.emplace_back(work);
  auto finish = [&] {
    {
      std::lock_guard lock(mutex);
      stop = true;
    }
    changed.notify_all();
    for (std::thread& t : workers) t.join();
  };
  try {
    for (std::int64_t b = first; b < end; ++b) {
      Batch batch;
      {
        std::unique_lock lock(mutex);
        changed.wait(lock, [&] { return failure || ready.count(b); });
        if (failure) std::rethrow_exception(failure);
        batch = std::move(ready.at(b));
        ready.erase(b);
        consumed = b + 1;
      }
      changed.notify_all();
      if (!consume(b, batch)) break;
    }
  } catch (...) {
    finish();
    throw;
  }
  finish();
}

}  // namespace nas
