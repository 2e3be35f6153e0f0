// nas::Conv2d (see layers.hpp); nas::BatchNorm2d is in batch_norm.cpp.
#include "nas/layers.hpp"
#include "depthwise_conv.hpp"
#include "nas/reducer.hpp"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <torch/autograd.h>

namespace nas {
namespace {

// A strided 1x1 convolution (no bias, one group) whose weight gradient is a matrix product instead of
// oneDNN's backward-weights kernel; the forward pass and the input's gradient stay oneDNN's (their
// kernels are sound). dW[o, c] = sum over n, i, j of dY[n, o, i, j] X[n, c, s*i, s*j]: with both in
// channels_last order, (N*h*w, O)^T x (N*h*w, C).
struct StridedPointwiseConv : torch::autograd::Function<StridedPointwiseConv> {
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
    const at::Tensor sampled = x.slice(2, 0, std::nullopt, sy).slice(3, 0, std::nullopt, sx);
    const at::Tensor dw = dy.permute({0, 2, 3, 1}).reshape({-1, dy.size(1)}).t().mm(
        sampled.permute({0, 2, 3, 1}).reshape({-1, x.size(1)}));
    return {dx, dw.view(weight.sizes()), at::Tensor(), at::Tensor()};
  }
};

// Whether `o` is a convolution the faulty kernel would compute the weight gradient of: a strided 1x1
// without padding or groups. The fault was seen with 4 input channels (not with 8, 12, 16, 32 or more,
// which oneDNN computes faster than the matrix product: 0.8x measured at 32 and 128 channels); every
// width below 16 takes the safe path (0.54x to 0.82x oneDNN's forward + backward at 4 to 12 channels in
// two runs of bench/layers.cpp on an AVX-512 CPU: up to 0.2 ms more per layer on these small shapes).
bool narrow_strided_pointwise(const torch::nn::detail::ConvNdOptions<2>& o) {
  const auto* padding = std::get_if<torch::ExpandingArray<2>>(&o.padding());
  return (*o.kernel_size())[0] == 1 && (*o.kernel_size())[1] == 1 && ((*o.stride())[0] > 1 || (*o.stride())[1] > 1) &&
         padding && (**padding)[0] == 0 && (**padding)[1] == 0 && o.groups() == 1 && o.in_channels() < 16 &&
         std::holds_alternative<torch::enumtype::kZeros>(o.padding_mode());
}

}  // namespace

Conv2dImpl::Conv2dImpl(torch::nn::Conv2dOptions options)
    : torch::nn::Conv2dImpl(std::move(options)),
      safe_weight_gradient_(narrow_strided_pointwise(this->options)),
      depthwise_weight_gradient_(depthwise_kernel_applies(this->options)) {}

at::Tensor Conv2dImpl::forward(const at::Tensor& input) {
  const auto& o = options;
  // Both replace oneDNN's float32 kernels for batches on CPUs (bf16 autocast and GPUs take others).
  if ((!safe_weight_gradient_ && !depthwise_weight_gradient_) || !at::GradMode::is_enabled() || !input.is_cpu() ||
      input.scalar_type() != at::kFloat || input.dim() != 4 || at::autocast::is_autocast_enabled(at::kCPU))
    return torch::nn::Conv2dImpl::forward(input);
  if (depthwise_weight_gradient_) return depthwise_conv2d(input, weight, o);
  at::Tensor out = StridedPointwiseConv::apply(input, weight, (*o.stride())[0], (*o.stride())[1]);
  return bias.defined() ? out + bias.view({1, -1, 1, 1}) : out;
}

Collective::~Collective() = default;
Reducer::~Reducer() = default;
ProcessGroup::~ProcessGroup() = default;

}  // namespace nas
