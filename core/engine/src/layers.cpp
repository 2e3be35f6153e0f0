// nas::Conv2d (see layers.hpp); nas::BatchNorm2d is in batch_norm.cpp.
#include "nas/layers.hpp"
#include "depthwise_conv.hpp"
#include "nas/reducer.hpp"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <torch/autograd.h>

namespace nas {
namespace {

// A 1x1 convolution (no padding, one group) whose weight gradient is one matrix product instead of
// oneDNN's backward-weights kernel; the forward pass and the input's gradient stay oneDNN's. dW[o, c]
// = sum over n, i, j of dY[n, o, i, j] X[n, c, s*i, s*j]: with both in channels_last order, a product
// of (N*h*w, O)^T and (N*h*w, C), views without a copy at stride 1 and with dY in channels_last.
struct PointwiseConv : torch::autograd::Function<PointwiseConv> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            std::int64_t sy, std::int64_t sx) {
    ctx->save_for_backward({x, weight});
    ctx->saved_data["sy"] = sy;
    ctx->saved_data["sx"] = sx;
    return at::conv2d(x, weight, {}, at::IntArrayRef{sy, sx});
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &weight = saved[1], &dy = grad_outputs[0];
    const std::int64_t sy = ctx->saved_data["sy"].toInt(), sx = ctx->saved_data["sx"].toInt();
    at::Tensor dx;
    if (ctx->needs_input_grad(0))
      dx = std::get<0>(at::convolution_backward(dy, x, weight, std::nullopt, {sy, sx}, {0, 0}, {1, 1}, false, {0, 0}, 1,
                                                {true, false, false}));
    at::Tensor dw;
    if (ctx->needs_input_grad(1)) {
      const at::Tensor sampled = x.slice(2, 0, std::nullopt, sy).slice(3, 0, std::nullopt, sx);
      dw = dy.permute({0, 2, 3, 1}).reshape({-1, dy.size(1)}).t().mm(sampled.permute({0, 2, 3, 1}).reshape({-1, x.size(1)}))
               .view(weight.sizes());
    }
    return {dx, dw, at::Tensor(), at::Tensor()};
  }
};

bool pointwise(const torch::nn::detail::ConvNdOptions<2>& o) {
  const auto* padding = std::get_if<torch::ExpandingArray<2>>(&o.padding());
  return (*o.kernel_size())[0] == 1 && (*o.kernel_size())[1] == 1 && padding && (**padding)[0] == 0 &&
         (**padding)[1] == 0 && o.groups() == 1 && std::holds_alternative<torch::enumtype::kZeros>(o.padding_mode());
}

// Whether the matrix product computes the weight gradient of the pointwise convolution `o` of `input`:
// - A strided one of fewer than 16 input channels, always: oneDNN's kernel for it faults. The fault
//   was seen with 4 input channels (not with 8, 12, 16, 32 or more); every width below 16 takes this
//   path (0.54x to 0.82x oneDNN's forward + backward at 4 to 12 channels in two runs of
//   bench/layers.cpp on an AVX-512 CPU: up to 0.2 ms more per layer on these small shapes).
// - A channels_last one of at most kFewPixels output pixels (N*h*w), where oneDNN's kernel is slower
//   (and copies its result into channels_last afterwards). On 2 threads, oneDNN's time over the
//   product's (bench/pointwise_weight_gradient.py) was 1.05x to 5.6x at 242 to 3,528 pixels and 44
//   to 4,032 channels (a 2-core Xeon with AVX-512), 1.75x to 2.29x for NASNet-A Large's 672x4032 at
//   242 pixels (a 2-core AVX-512 EPYC); with many pixels and few channels it was 0.68x (44 channels,
//   50,176 pixels) to 1.1x, so those stay oneDNN's. NASNet-A Large's three stages (batch 2) and
//   Mobile's last two (batch 16) are below it.
constexpr std::int64_t kFewPixels = 4096;

bool weight_gradient_by_product(const torch::nn::detail::ConvNdOptions<2>& o, const at::Tensor& input) {
  const auto& stride = *o.stride();
  if ((stride[0] > 1 || stride[1] > 1) && o.in_channels() < 16) return true;
  const std::int64_t pixels = input.size(0) * ((input.size(2) - 1) / stride[0] + 1) * ((input.size(3) - 1) / stride[1] + 1);
  return pixels <= kFewPixels && input.is_contiguous(at::MemoryFormat::ChannelsLast);
}

}  // namespace

Conv2dImpl::Conv2dImpl(torch::nn::Conv2dOptions options)
    : torch::nn::Conv2dImpl(std::move(options)),
      pointwise_(pointwise(this->options)),
      depthwise_weight_gradient_(depthwise_kernel_applies(this->options)) {}

at::Tensor Conv2dImpl::forward(const at::Tensor& input) {
  const auto& o = options;
  // Both replace oneDNN's float32 kernels for batches on CPUs (bf16 autocast and GPUs take others).
  if ((!pointwise_ && !depthwise_weight_gradient_) || !at::GradMode::is_enabled() || !input.is_cpu() ||
      input.scalar_type() != at::kFloat || input.dim() != 4 || at::autocast::is_autocast_enabled(at::kCPU))
    return torch::nn::Conv2dImpl::forward(input);
  if (depthwise_weight_gradient_) return depthwise_conv2d(input, weight, o);
  if (!weight_gradient_by_product(o, input)) return torch::nn::Conv2dImpl::forward(input);
  at::Tensor out = PointwiseConv::apply(input, weight, (*o.stride())[0], (*o.stride())[1]);
  return bias.defined() ? out + bias.view({1, -1, 1, 1}) : out;
}

Collective::~Collective() = default;
Reducer::~Reducer() = default;
ProcessGroup::~ProcessGroup() = default;

}  // namespace nas
