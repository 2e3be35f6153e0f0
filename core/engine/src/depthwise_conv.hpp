// The engine's depthwise convolution for nas::Conv2d (depthwise_conv.cpp): oneDNN's forward pass and
// input gradient, the engine's own weight gradient.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/nn/options/conv.h>

namespace nas {

/// Whether `o` is a convolution depthwise_conv2d computes: depthwise (one filter per channel), square
/// 5x5 or 7x7, strides of 1 or 2, no dilation, zero padding given as numbers, no bias.
bool depthwise_kernel_applies(const torch::nn::detail::ConvNdOptions<2>& o);

/// The convolution `o` (for which depthwise_kernel_applies) of a float32 CPU batch (N, C, H, W), differentiable.
at::Tensor depthwise_conv2d(const at::Tensor& x, const at::Tensor& weight, const torch::nn::detail::ConvNdOptions<2>& o);

}  // namespace nas
