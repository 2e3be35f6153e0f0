// nas::Conv2d and nas::BatchNorm2d (see layers.hpp).
#include "nas/layers.hpp"
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
    if (x.requires_grad())
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
// width below 16 takes the safe path (0.95x measured at 4 and 8 channels, bench/layers.cpp).
bool narrow_strided_pointwise(const torch::nn::detail::ConvNdOptions<2>& o) {
  const auto* padding = std::get_if<torch::ExpandingArray<2>>(&o.padding());
  return (*o.kernel_size())[0] == 1 && (*o.kernel_size())[1] == 1 && ((*o.stride())[0] > 1 || (*o.stride())[1] > 1) &&
         padding && (**padding)[0] == 0 && (**padding)[1] == 0 && o.groups() == 1 && o.in_channels() < 16 &&
         std::holds_alternative<torch::enumtype::kZeros>(o.padding_mode());
}

}  // namespace

Conv2dImpl::Conv2dImpl(torch::nn::Conv2dOptions options)
    : torch::nn::Conv2dImpl(std::move(options)), safe_weight_gradient_(narrow_strided_pointwise(this->options)) {}

at::Tensor Conv2dImpl::forward(const at::Tensor& input) {
  const auto& o = options;
  // The faulty kernel is oneDNN's float32 one on CPUs (bf16 autocast and GPUs take others).
  if (!safe_weight_gradient_ || !at::GradMode::is_enabled() || !input.is_cpu() || input.scalar_type() != at::kFloat ||
      at::autocast::is_autocast_enabled(at::kCPU))
    return torch::nn::Conv2dImpl::forward(input);
  at::Tensor out = StridedPointwiseConv::apply(input, weight, (*o.stride())[0], (*o.stride())[1]);
  return bias.defined() ? out + bias.view({1, -1, 1, 1}) : out;
}

namespace {

thread_local Collective* t_collective = nullptr;

at::Tensor per_channel(const at::Tensor& v) { return v.view({1, -1, 1, 1}); }

// Batch norm over the global batch. Forward: the processes sum their per-channel sums, sums of squares
// and counts; backward: their sums of dy and dy * xhat, the two reductions the input's gradient
// needs. Sums in double: sums of squares over many pixels lose the digits the variance needs.
struct GlobalBatchNormFunction : torch::autograd::Function<GlobalBatchNormFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            const at::Tensor& bias, at::Tensor running_mean, at::Tensor running_var, double momentum,
                            double eps, Collective* collective) {
    const std::int64_t channels = x.size(1);
    const at::Tensor local = at::cat({x.sum({0, 2, 3}, false, at::kDouble), x.square().sum({0, 2, 3}, false, at::kDouble),
                                      at::full({1}, static_cast<double>(x.numel() / channels), x.options().dtype(at::kDouble))});
    const at::Tensor global = collective->sum(local);
    const double count = global[2 * channels].item<double>();
    const at::Tensor mean = global.slice(0, 0, channels) / count;
    const at::Tensor variance = (global.slice(0, channels, 2 * channels) / count - mean.square()).clamp_min(0);
    if (running_mean.defined()) {
      running_mean.mul_(1 - momentum).add_(mean.to(running_mean.scalar_type()), momentum);
      running_var.mul_(1 - momentum).add_((variance * (count / std::max(count - 1, 1.0))).to(running_var.scalar_type()), momentum);
    }
    const at::Tensor invstd = (variance + eps).rsqrt().to(x.scalar_type());
    const at::Tensor xhat = (x - per_channel(mean.to(x.scalar_type()))) * per_channel(invstd);
    ctx->save_for_backward({xhat, invstd, weight});
    ctx->saved_data["count"] = count;
    ctx->saved_data["collective"] = reinterpret_cast<std::int64_t>(collective);
    return weight.defined() ? xhat * per_channel(weight) + per_channel(bias) : xhat;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const at::Tensor& dy = grad_outputs[0];
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &xhat = saved[0], &invstd = saved[1], &weight = saved[2];
    auto* collective = reinterpret_cast<Collective*>(ctx->saved_data["collective"].toInt());
    const double count = ctx->saved_data["count"].toDouble();
    const std::int64_t channels = dy.size(1);
    const at::Tensor sum_dy = dy.sum({0, 2, 3}, false, at::kDouble), sum_dy_xhat = (dy * xhat).sum({0, 2, 3}, false, at::kDouble);
    const at::Tensor global = collective->sum(at::cat({sum_dy, sum_dy_xhat})).to(dy.scalar_type());
    const at::Tensor scale = weight.defined() ? weight * invstd : invstd;
    const at::Tensor dx = per_channel(scale) * (dy - per_channel(global.slice(0, 0, channels) / count) -
                                                xhat * per_channel(global.slice(0, channels, 2 * channels) / count));
    return {dx, weight.defined() ? sum_dy_xhat.to(weight.scalar_type()) : at::Tensor(),
            weight.defined() ? sum_dy.to(weight.scalar_type()) : at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

BatchNorm2dImpl::BatchNorm2dImpl(torch::nn::BatchNorm2dOptions options) : torch::nn::BatchNorm2dImpl(std::move(options)) {}

at::Tensor BatchNorm2dImpl::forward(const at::Tensor& input) {
  if (!is_training() || !t_collective) return torch::nn::BatchNorm2dImpl::forward(input);
  const bool track = options.track_running_stats();
  double momentum = options.momentum().value_or(0.0);
  if (track) {
    num_batches_tracked.add_(1);
    if (!options.momentum()) momentum = 1.0 / num_batches_tracked.item<double>();  // a cumulative average
  }
  return GlobalBatchNormFunction::apply(input, weight, bias, track ? running_mean : at::Tensor(),
                                        track ? running_var : at::Tensor(), momentum, options.eps(), t_collective);
}

Collective::~Collective() = default;
Reducer::~Reducer() = default;
ProcessGroup::~ProcessGroup() = default;

GlobalBatchNorm::GlobalBatchNorm(Collective& collective) : previous_(t_collective) { t_collective = &collective; }
GlobalBatchNorm::~GlobalBatchNorm() { t_collective = previous_; }

}  // namespace nas
