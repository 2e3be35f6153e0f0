// The layers every op and space builds its networks with: torch's, with the engine's fixes.
#pragma once

#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

#include "nas/api.hpp"

namespace nas {

/// torch::nn::Conv2d (same options, parameters, names and state dict), except for three weight
/// gradients of float32 convolutions on the CPU, the same gradients computed otherwise:
/// - a strided 1x1 convolution of fewer than 16 input channels: a matrix product rather than
///   oneDNN's backward-weights kernel. Why: oneDNN's jit_1x1 backward-weights kernel for strided 1x1
///   convolutions on channels_last inputs with 4 channels corrupts the heap on AVX2-only CPUs (torch
///   2.15.0; docs/known-issues.md), and NASNet builds exactly that op in every reduction cell of a
///   narrow child;
/// - a channels_last 1x1 convolution of at most 4,096 output pixels (batch x height x width): a
///   matrix product too, where oneDNN's kernel took 1.05x to 5x the product's time (layers.cpp
///   says where it did not);
/// - a depthwise 5x5 or 7x7 convolution of stride 1 or 2: the engine's own kernel (oneDNN's took 7x to 10x the
///   forward pass; with it, forward + backward of NASNet's separable convolutions' depthwise layers
///   run 1.4x to 2.3x torch's, bench/layers.cpp), within float's precision of torch's results.
class NAS_API Conv2dImpl : public torch::nn::Conv2dImpl {
 public:
  explicit Conv2dImpl(torch::nn::Conv2dOptions options);
  at::Tensor forward(const at::Tensor& input);

 private:
  bool pointwise_;                  ///< a 1x1 convolution: its weight gradient may be a matrix product
  bool depthwise_weight_gradient_;  ///< a depthwise 5x5 or 7x7 convolution, stride 1 or 2: the engine's kernel
};
TORCH_MODULE(Conv2d);

/// torch::nn::BatchNorm2d (same options, parameters, buffers and state dict), except that inside a
/// GlobalBatchNorm scope a training forward pass normalizes with the statistics of the global batch
/// of every process, and updates the running statistics with them: data-parallel training then
/// computes what one process computes on the whole batch (per-process statistics would make the
/// normalization depend on the number of processes, and their averaged running variance misses the
/// spread between the processes' means, which shows as a lower test accuracy). In training, float32
/// channels_last layers of fewer than 64 channels on the CPU run the engine's own kernels (up to 6x
/// torch's on narrow layers), within float's precision of torch's results rather than bit for bit.
class NAS_API BatchNorm2dImpl : public torch::nn::BatchNorm2dImpl {
 public:
  explicit BatchNorm2dImpl(torch::nn::BatchNorm2dOptions options);
  at::Tensor forward(const at::Tensor& input);
};
TORCH_MODULE(BatchNorm2d);

/// Element-wise sums over the processes of a data-parallel training (the engine implements it).
class NAS_API Collective {
 public:
  virtual ~Collective();
  /// `local` summed over every process; each must call it alike, in the same order.
  virtual at::Tensor sum(const at::Tensor& local) = 0;
};

/// While it lives, nas::BatchNorm2d layers training on this thread use global-batch statistics,
/// summed through `collective` (in the forward pass and, later, in the backward pass).
class NAS_API GlobalBatchNorm {
 public:
  explicit GlobalBatchNorm(Collective& collective);
  ~GlobalBatchNorm();
  GlobalBatchNorm(const GlobalBatchNorm&) = delete;
  GlobalBatchNorm& operator=(const GlobalBatchNorm&) = delete;

 private:
  Collective* previous_;
};

}  // namespace nas
