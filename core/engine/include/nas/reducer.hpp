// Data-parallel training's link to the other processes, as the engine sees it. The host implements it
// (over c10d: Gloo on CPU, NCCL on GPU); the engine never sees a store, a rank's address or a backend.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <c10/core/Device.h>

#include "nas/api.hpp"
#include "nas/layers.hpp"

namespace torch::nn {
class Module;
}

namespace nas {

/// One network's gradient synchronization (Flashlight's Reducer): gradients are added as the backward
/// pass produces them, then finalized. Also the Collective of batch norm's global-batch statistics.
class NAS_API Reducer : public Collective {
 public:
  ~Reducer() override;
  /// After backward(): every gradient of the network averaged over the processes, in its grad.
  virtual void finalize() = 0;
  /// Averages floating-point buffers (batch-norm running statistics) over the processes.
  virtual void average_buffers() = 0;
  /// Element-wise sums of `values` over the processes (metrics).
  virtual std::vector<double> sum(const std::vector<double>& values) = 0;
  using Collective::sum;
};

/// The processes of one data-parallel training. Every process makes the same calls in the same order.
class NAS_API ProcessGroup {
 public:
  virtual ~ProcessGroup();
  virtual std::int64_t rank() const = 0;  ///< 0 writes checkpoints and metrics
  virtual std::int64_t size() const = 0;
  /// Makes every replica of `network` equal to rank 0's and hooks its gradients into a new Reducer.
  virtual std::unique_ptr<Reducer> reducer(torch::nn::Module& network, c10::Device device) const = 0;
};

}  // namespace nas
