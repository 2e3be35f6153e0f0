// nas::BatchNorm2d and GlobalBatchNorm (see layers.hpp): training-mode batch norm with the engine's own
// kernels for float32 channels_last tensors on the CPU, over the local or the global batch.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/autograd.h>

#include <numeric>
#include <vector>

#include "nas/layers.hpp"

namespace nas {
namespace {

thread_local Collective* t_collective = nullptr;

// A channels_last tensor is rows of `channels` values, one row per pixel. Walked in blocks of `period`
// = lcm(channels, 16) values, lane j of every block holds channel j % channels, so the loops below are
// plain vectorizable loops over a block however few channels there are. ATen's kernels loop over one
// row at a time, mostly in scalar tails at 11, 22 or 44 channels: their backward pass took 20% of a
// NASNet-A Mobile step (README, "Benchmarks"), whose first cells have 11 to 44 channels.
struct Layout {
  std::int64_t channels, period, numel;
  explicit Layout(const at::Tensor& x)
      : channels(x.size(1)), period(std::lcm(x.size(1), std::int64_t{16})), numel(x.numel()) {}
  // Fixed chunks of blocks (about 64K values), whatever the threads: the sums add up the same way
  // on any number of threads (and, without contracted multiply-adds, with any instruction set).
  std::int64_t blocks_per_chunk() const { return std::max<std::int64_t>(1, (std::int64_t{1} << 16) / period); }
  std::int64_t chunks() const {
    const std::int64_t blocks = (numel + period - 1) / period;
    return (blocks + blocks_per_chunk() - 1) / blocks_per_chunk();
  }
  // Values [begin, end) of chunk k.
  std::pair<std::int64_t, std::int64_t> chunk(std::int64_t k) const {
    const std::int64_t begin = k * blocks_per_chunk() * period;
    return {begin, std::min(numel, begin + blocks_per_chunk() * period)};
  }
  // A per-channel vector repeated over one period.
  std::vector<float> periodic(const std::vector<double>& per_channel) const {
    std::vector<float> out(static_cast<std::size_t>(period));
    for (std::size_t j = 0; j < out.size(); ++j) out[j] = static_cast<float>(per_channel[j % per_channel.size()]);
    return out;
  }
};

// A per-channel tensor's values (the host's bookkeeping stays out of ATen: a few hundred layers times
// a dozen tiny ops each cost more than the kernels on narrow layers).
std::vector<double> values(const at::Tensor& per_channel) {
  const at::Tensor v = per_channel.to(at::kDouble).contiguous();
  return {v.data_ptr<double>(), v.data_ptr<double>() + v.numel()};
}

// Each value rounded to float, as the kernels subtract it, and back.
std::vector<double> rounded(std::vector<double> v) {
  for (double& x : v) x = static_cast<double>(static_cast<float>(x));
  return v;
}

// s1[j] += u, s2[j] += u * (v - shift[j]) over the values [0, n), lane by lane (n <= whole blocks + a tail).
[[gnu::target_clones("avx512f", "avx2", "default")]] void accumulate(const float* u, const float* v, const float* shift,
                                                                     std::int64_t n, std::int64_t period, double* s1,
                                                                     double* s2) {
  for (std::int64_t begin = 0; begin < n; begin += period) {
    const std::int64_t lanes = std::min(period, n - begin);
    const float *ub = u + begin, *vb = v + begin;
    for (std::int64_t j = 0; j < lanes; ++j) {
      s1[j] += ub[j];
      s2[j] += static_cast<double>(ub[j]) * static_cast<double>(vb[j] - shift[j]);
    }
  }
}

// out = (x - centre[j]) * a[j] + b[j] (+ dy * c[j]) over the values [0, n).
[[gnu::target_clones("avx512f", "avx2", "default")]] void affine(const float* x, const float* dy, const float* centre,
                                                                 const float* a, const float* b, const float* c,
                                                                 std::int64_t n, std::int64_t period, float* out) {
  for (std::int64_t begin = 0; begin < n; begin += period) {
    const std::int64_t lanes = std::min(period, n - begin);
    const float* xb = x + begin;
    float* ob = out + begin;
    if (dy) {
      const float* db = dy + begin;
      for (std::int64_t j = 0; j < lanes; ++j) ob[j] = (xb[j] - centre[j]) * a[j] + b[j] + db[j] * c[j];
    } else {
      for (std::int64_t j = 0; j < lanes; ++j) ob[j] = (xb[j] - centre[j]) * a[j] + b[j];
    }
  }
}

// Whether the kernels above take `x`: float32 channels_last on the CPU with more than one value per
// channel (torch's batch norm leaves an empty batch alone and refuses a single value), and narrow, where they beat
// ATen's. Forward + backward of one layer, 2 threads, against torch's batch norm: 5.7x at 11 channels
// (16x11x56x56), 1.7x at 44, 0.92x at 88, 0.67x at 168, 0.34x at 1008. ATen vectorizes along a row of
// channels, which pays once rows are long; the kernels' double accumulators cost more there.
bool packed(const at::Tensor& x) {
  constexpr std::int64_t kNarrow = 64;
  return x.device().is_cpu() && x.scalar_type() == at::kFloat && x.dim() == 4 && x.size(1) > 0 &&
         x.size(1) < kNarrow && x.numel() / x.size(1) > 1 && x.is_contiguous(at::MemoryFormat::ChannelsLast);
}

at::Tensor per_channel(const at::Tensor& v) { return v.view({1, -1, 1, 1}); }

// Per channel, in double: sum of u and sum of u * (v - centre), centre in double. Both tensors packed,
// or any other layout, device or type through ATen.
std::pair<at::Tensor, at::Tensor> channel_sums(const at::Tensor& u, const at::Tensor& v, const at::Tensor& centre) {
  if (!packed(u) || !packed(v)) {
    const at::Tensor centred = v - per_channel(centre.to(v.scalar_type()));
    return {u.sum({0, 2, 3}, false, at::kDouble), (u * centred).sum({0, 2, 3}, false, at::kDouble)};
  }
  const Layout layout(u);
  const std::vector<double> exact_centre = values(centre), float_centre = rounded(exact_centre);
  const std::vector<float> lanes_centre = layout.periodic(float_centre);
  const auto period = static_cast<std::size_t>(layout.period);
  std::vector<double> partial(static_cast<std::size_t>(layout.chunks()) * 2 * period, 0.0);
  at::parallel_for(0, layout.chunks(), 1, [&](std::int64_t first, std::int64_t last) {
    for (std::int64_t k = first; k < last; ++k) {
      const auto [begin, end] = layout.chunk(k);
      double* s = partial.data() + static_cast<std::size_t>(k) * 2 * period;
      accumulate(u.data_ptr<float>() + begin, v.data_ptr<float>() + begin, lanes_centre.data(), end - begin,
                 layout.period, s, s + period);
    }
  });
  const auto channels = static_cast<std::size_t>(layout.channels);
  std::vector<double> sums(2 * channels, 0.0);
  for (std::int64_t k = 0; k < layout.chunks(); ++k)  // in chunk order: the same sums on any number of threads
    for (std::size_t j = 0; j < 2 * period; ++j)        // period: a multiple of channels
      sums[(j < period ? 0 : channels) + j % channels] += partial[static_cast<std::size_t>(k) * 2 * period + j];
  // The kernel centred on the float nearest to each centre: the rest of the way in double.
  for (std::size_t c = 0; c < channels; ++c) sums[channels + c] -= (exact_centre[c] - float_centre[c]) * sums[c];
  const at::Tensor out = at::tensor(sums, u.options().dtype(at::kDouble)).view({2, layout.channels});
  return {out[0], out[1]};
}

// (x - centre) * a + b (+ dy * c), all four per channel in double: packed tensors through the kernel
// above, others through ATen. Centred first, as torch's batch norm: x * a + (b - centre * a) would lose
// the digits of x that its mean shares.
at::Tensor channel_affine(const at::Tensor& x, const at::Tensor& centre, const at::Tensor& a, const at::Tensor& b,
                          const at::Tensor& dy = {}, const at::Tensor& c = {}) {
  const auto type = x.scalar_type();
  if (!packed(x) || (dy.defined() && !packed(dy))) {
    at::Tensor out = (x - per_channel(centre.to(type))) * per_channel(a.to(type)) + per_channel(b.to(type));
    return dy.defined() ? out + dy * per_channel(c.to(type)) : out;
  }
  const Layout layout(x);
  const std::vector<double> exact_centre = values(centre), float_centre = rounded(exact_centre), va = values(a);
  std::vector<double> vb = values(b);
  for (std::size_t k = 0; k < vb.size(); ++k) vb[k] += (float_centre[k] - exact_centre[k]) * va[k];  // the centre's rounding
  const std::vector<float> lcentre = layout.periodic(float_centre), la = layout.periodic(va), lb = layout.periodic(vb);
  const std::vector<float> lc = dy.defined() ? layout.periodic(values(c)) : std::vector<float>();
  at::Tensor out = at::empty_like(x, at::MemoryFormat::ChannelsLast);
  at::parallel_for(0, layout.chunks(), 1, [&](std::int64_t first, std::int64_t last) {
    for (std::int64_t k = first; k < last; ++k) {
      const auto [begin, end] = layout.chunk(k);
      affine(x.data_ptr<float>() + begin, dy.defined() ? dy.data_ptr<float>() + begin : nullptr, lcentre.data(),
             la.data(), lb.data(), lc.data(), end - begin, layout.period, out.data_ptr<float>() + begin);
    }
  });
  return out;
}

// Training-mode batch norm over the local batch, or over the global one when a collective is given:
// the processes then sum their per-channel sums, sums of squares and counts in the forward pass, and
// their sums of dy and dy * xhat in the backward pass, the two reductions the input's gradient needs.
// Sums in double: sums of squares over many pixels lose the digits the variance needs in float.
struct BatchNormFunction : torch::autograd::Function<BatchNormFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            const at::Tensor& bias, at::Tensor running_mean, at::Tensor running_var, double momentum,
                            double eps, Collective* collective) {
    const std::int64_t channels = x.size(1);
    auto [sum, sum_of_squares] = channel_sums(x, x, at::zeros({channels}, x.options().dtype(at::kDouble)));
    double count = static_cast<double>(x.numel() / channels);
    if (collective) {
      const at::Tensor global = collective->sum(at::cat({sum, sum_of_squares, at::full({1}, count, sum.options())}));
      sum = global.slice(0, 0, channels);
      sum_of_squares = global.slice(0, channels, 2 * channels);
      count = global[2 * channels].item<double>();
    }
    const at::Tensor mean = sum / count;
    const at::Tensor variance = (sum_of_squares / count - mean.square()).clamp_min(0);
    if (running_mean.defined()) {
      running_mean.mul_(1 - momentum).add_(mean.to(running_mean.scalar_type()), momentum);
      running_var.mul_(1 - momentum).add_((variance * (count / std::max(count - 1, 1.0))).to(running_var.scalar_type()), momentum);
    }
    const at::Tensor invstd = (variance + eps).rsqrt();
    const at::Tensor scale = weight.defined() ? weight.to(at::kDouble) * invstd : invstd;
    const at::Tensor shift = weight.defined() ? bias.to(at::kDouble) : at::zeros_like(mean);
    ctx->save_for_backward({x, mean, invstd, weight});
    ctx->saved_data["count"] = count;
    ctx->saved_data["collective"] = reinterpret_cast<std::int64_t>(collective);
    return channel_affine(x, mean, scale, shift);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &mean = saved[1], &invstd = saved[2], &weight = saved[3];
    // The kernels need dy in x's layout; the engine's layers hand it over that way (concat_channels).
    const at::Tensor dy = packed(x) ? grad_outputs[0].contiguous(at::MemoryFormat::ChannelsLast) : grad_outputs[0];
    auto* collective = reinterpret_cast<Collective*>(ctx->saved_data["collective"].toInt());
    const double count = ctx->saved_data["count"].toDouble();
    const std::int64_t channels = dy.size(1);
    const auto [sum_dy, sum_dy_centred] = channel_sums(dy, x, mean);
    const at::Tensor sum_dy_xhat = sum_dy_centred * invstd;
    at::Tensor total_dy = sum_dy, total_dy_xhat = sum_dy_xhat;
    if (collective) {
      const at::Tensor global = collective->sum(at::cat({sum_dy, sum_dy_xhat}));
      total_dy = global.slice(0, 0, channels);
      total_dy_xhat = global.slice(0, channels, 2 * channels);
    }
    // dx = scale * (dy - total_dy / count - xhat * total_dy_xhat / count), xhat = (x - mean) * invstd:
    // dx = (x - mean) * (-scale * invstd * total_dy_xhat / count) - scale * total_dy / count + dy * scale.
    const at::Tensor scale = weight.defined() ? weight.to(at::kDouble) * invstd : invstd;
    const at::Tensor dx = channel_affine(x, mean, -scale * invstd * total_dy_xhat / count, -scale * total_dy / count,
                                         dy, scale);
    // The parameters' gradients are this process's own, as every parameter's (the reducer averages them).
    return {dx, weight.defined() ? sum_dy_xhat.to(weight.scalar_type()) : at::Tensor(),
            weight.defined() ? sum_dy.to(weight.scalar_type()) : at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

BatchNorm2dImpl::BatchNorm2dImpl(torch::nn::BatchNorm2dOptions options) : torch::nn::BatchNorm2dImpl(std::move(options)) {}

at::Tensor BatchNorm2dImpl::forward(const at::Tensor& input) {
  // Evaluation, and training outside the engine's kernels on one process (GPUs, bf16), stay torch's.
  if (!is_training() || (!t_collective && !packed(input))) return torch::nn::BatchNorm2dImpl::forward(input);
  const bool track = options.track_running_stats();
  double momentum = options.momentum().value_or(0.0);
  if (track) {
    num_batches_tracked.add_(1);
    if (!options.momentum()) momentum = 1.0 / num_batches_tracked.item<double>();  // a cumulative average
  }
  return BatchNormFunction::apply(input, weight, bias, track ? running_mean : at::Tensor(),
                                  track ? running_var : at::Tensor(), momentum, options.eps(), t_collective);
}

GlobalBatchNorm::GlobalBatchNorm(Collective& collective) : previous_(t_collective) { t_collective = &collective; }
GlobalBatchNorm::~GlobalBatchNorm() { t_collective = previous_; }

}  // namespace nas
