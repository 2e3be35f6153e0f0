// nas::Conv2d and nas::BatchNorm2d (see layers.hpp).
#include "nas/layers.hpp"

#include <ATen/ATen.h>
#include <torch/autograd.h>

namespace nas {

Conv2dImpl::Conv2dImpl(torch::nn::Conv2dOptions options) : torch::nn::Conv2dImpl(std::move(options)) {}

at::Tensor Conv2dImpl::forward(const at::Tensor& input) {
  const auto& o = options;
  const auto* padding = std::get_if<torch::ExpandingArray<2>>(&o.padding());
  const bool pointwise = (*o.kernel_size())[0] == 1 && (*o.kernel_size())[1] == 1;
  const bool strided = (*o.stride())[0] > 1 || (*o.stride())[1] > 1;
  if (!pointwise || !strided || !padding || (**padding)[0] != 0 || (**padding)[1] != 0 ||
      !std::holds_alternative<torch::enumtype::kZeros>(o.padding_mode()))
    return torch::nn::Conv2dImpl::forward(input);
  // Output pixel (i, j) of a 1x1 convolution with stride s reads input pixel (s*i, s*j) only.
  const at::Tensor sampled = input.slice(-2, 0, std::nullopt, (*o.stride())[0]).slice(-1, 0, std::nullopt, (*o.stride())[1]);
  return at::conv2d(sampled, weight, bias, /*stride=*/at::IntArrayRef{1}, /*padding=*/at::IntArrayRef{0},
                    /*dilation=*/at::IntArrayRef{1}, o.groups());
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
    const at::Tensor xd = x.to(at::kDouble);
    const at::Tensor local = at::cat({xd.sum({0, 2, 3}), xd.square().sum({0, 2, 3}),
                                      at::full({1}, static_cast<double>(x.numel() / channels), xd.options())});
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
    const at::Tensor sum_dy = dy.sum({0, 2, 3}), sum_dy_xhat = (dy * xhat).sum({0, 2, 3});
    const at::Tensor global = collective->sum(at::cat({sum_dy, sum_dy_xhat}).to(at::kDouble)).to(dy.scalar_type());
    const at::Tensor scale = weight.defined() ? weight * invstd : invstd;
    const at::Tensor dx = per_channel(scale) * (dy - per_channel(global.slice(0, 0, channels) / count) -
                                                xhat * per_channel(global.slice(0, channels, 2 * channels) / count));
    return {dx, weight.defined() ? sum_dy_xhat : at::Tensor(), weight.defined() ? sum_dy : at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

BatchNorm2dImpl::BatchNorm2dImpl(torch::nn::BatchNorm2dOptions options) : torch::nn::BatchNorm2dImpl(std::move(options)) {}

at::Tensor BatchNorm2dImpl::forward(const at::Tensor& input) {
  if (!is_training() || !t_collective) return torch::nn::BatchNorm2dImpl::forward(input);
  double momentum = options.momentum().value_or(0.0);
  if (options.track_running_stats()) {
    num_batches_tracked.add_(1);
    if (!options.momentum()) momentum = 1.0 / num_batches_tracked.item<double>();  // a cumulative average
  }
  const bool track = options.track_running_stats();
  return GlobalBatchNormFunction::apply(input, weight, bias, track ? running_mean : at::Tensor(),
                                        track ? running_var : at::Tensor(), momentum, options.eps(), t_collective);
}

Collective::~Collective() = default;

GlobalBatchNorm::GlobalBatchNorm(Collective& collective) : previous_(t_collective) { t_collective = &collective; }
GlobalBatchNorm::~GlobalBatchNorm() { t_collective = previous_; }

}  // namespace nas
