// Data-parallel training across the run's processes with c10d collectives (Gloo on CPU, NCCL on
// GPU): every rank holds a replica and trains on its share of each global batch; gradients are
// averaged in buckets that are all-reduced while the backward pass still runs. The host's implementation
// of the engine's ProcessGroup and Reducer (nas/reducer.hpp).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/util/intrusive_ptr.h>

#include "nas/api.hpp"
#include "nas/reducer.hpp"

namespace torch::nn {
class Module;
}
namespace c10d {
class Backend;
}

namespace nas {

class Cluster;

/// A process group of every rank of `cluster`, named `name` (each rank must create its groups in the
/// same order, with the same names): NCCL when every rank has a GPU of its own, Gloo otherwise (CPU,
/// or processes sharing a GPU, which NCCL refuses).
NAS_API c10::intrusive_ptr<c10d::Backend> process_group(const Cluster& cluster, const std::string& name,
                                                        c10::Device device);

/// Its sums of tensors (batch norm's global statistics, nas::GlobalBatchNorm) run over a process group
/// of their own: they run during the backward pass, beside the gradients' buckets.
class NAS_API DataParallel final : public Reducer {
 public:
  /// Joins every rank of `cluster` in the process groups `name` and `name`/bn (see process_group),
  /// makes every replica of `network` equal to rank 0's and hooks its gradients.
  DataParallel(const Cluster& cluster, const std::string& name, torch::nn::Module& network, c10::Device device,
               std::int64_t bucket_bytes = 25 << 20);
  ~DataParallel() override;
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  std::int64_t rank() const;
  std::int64_t size() const;

  /// Starts the buckets the backward pass left (parameters it did not reach count as zero), waits for
  /// all and writes the averaged gradients into the parameters' grad.
  void finalize() override;
  void average_buffers() override;
  std::vector<double> sum(const std::vector<double>& values) override;
  at::Tensor sum(const at::Tensor& local) override;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// Every process of a cluster as the engine's ProcessGroup: each reducer joins new process groups,
/// named in sequence (Cluster::next_name), so every rank must ask for its reducers in the same order.
class NAS_API ClusterProcessGroup final : public ProcessGroup {
 public:
  explicit ClusterProcessGroup(const Cluster& cluster) : cluster_(cluster) {}
  std::int64_t rank() const override;
  std::int64_t size() const override;
  std::unique_ptr<Reducer> reducer(torch::nn::Module& network, c10::Device device) const override;

 private:
  const Cluster& cluster_;
};

}  // namespace nas
