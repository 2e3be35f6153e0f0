// The weight gradient of depthwise convolutions on the CPU (nas::Conv2d, see layers.hpp).
//
// oneDNN's depthwise backward-weights kernel takes 7x to 10x the forward pass at 5x5 and 7x7 (torch
// 2.15.0, channels_last, on a 2-core AVX-512 EPYC; more on contiguous tensors), and NASNet's separable
// 5x5 and 7x7 convolutions made it a fifth of a NASNet-A Mobile training step. Its 3x3 kernel is fast
// and stays. The kernel here reads x and dy in place, 16 channels at a time in one vector register,
// and does its multiply-adds at about the rate of oneDNN's forward pass (1.2 to 1.8 G vector
// multiply-adds a second on one thread here, against about 1.4 for the forward pass).
#include "depthwise_conv.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/autograd.h>

namespace nas {
namespace {

constexpr std::int64_t kLanes = 16;  // channels per vector
using Vec = float __attribute__((vector_size(kLanes * sizeof(float))));

// Where the kernel reads: x and dy channels_last, `channels` values per pixel, at least 16 of them.
struct Geometry {
  const float *x, *dy;
  std::int64_t channels, height, width, out_height, out_width, sy, sx, py, px;
};

// Vectors of 16 channels: group g starts at channel 16 g, the last one at channels - 16, overlapping
// the one before it when the channels are not a multiple of 16 (its reads stay inside each pixel).
std::int64_t groups(std::int64_t channels) { return (channels + kLanes - 1) / kLanes; }
std::int64_t group_start(std::int64_t group, std::int64_t channels) { return std::min(group * kLanes, channels - kLanes); }

// Along `count` output columns whose taps all fall inside the row (x and dy at the first one's first
// tap and pixel): acc[j] += dy[ox] * x[ox * S + j]. Each vector of x is loaded once and kept in a
// window of registers for every column that reads it: 1.15x to 1.75x the speed of loading every tap
// (one thread, NASNet's shapes), which made the loop bound by its loads.
template <int K, int S>
[[gnu::always_inline]] inline void inner_columns(const float* x, const float* dy, std::int64_t c, std::int64_t count,
                                                 Vec* acc) {
  Vec window[K];  // window[j]: x at column ox * S + j
  for (int j = 0; j < K - S; ++j) __builtin_memcpy(&window[j], x + j * c, sizeof(Vec));
  for (std::int64_t ox = 0; ox < count; ++ox, x += S * c, dy += c) {
    for (int j = K - S; j < K; ++j) __builtin_memcpy(&window[j], x + j * c, sizeof(Vec));
    Vec d;
    __builtin_memcpy(&d, dy, sizeof d);
    for (int j = 0; j < K; ++j) acc[j] += d * window[j];
    for (int j = 0; j < K - S; ++j) window[j] = window[j + S];
  }
}

// The sums over output rows [oy_begin, oy_end) of image n: for each group of 16 channels, kernel row i
// and column j, the sum over (oy, ox) of dy[n, oy, ox] * x[n, oy * sy + i - py, ox * sx + j - px]
// (zero outside x) lane by lane, into out[((group * K + i) * K + j) * 16 + lane]. Whole rows of pixels
// at a time, each with every group: rows of dy and x are read from memory once and stay in L1 and L2.
// The K columns' sums of one kernel row and group stay in registers along a row.
template <int K>
[[gnu::always_inline]] inline void band_sums_of(const Geometry& g, std::int64_t n, std::int64_t oy_begin,
                                             std::int64_t oy_end, float* out) {
  const std::int64_t c = g.channels;
  // Output columns whose K taps all fall inside the row: [inner_begin, inner_end).
  const std::int64_t inner_begin = std::min((g.px + g.sx - 1) / g.sx, g.out_width);
  const std::int64_t last_inner = g.width - K + g.px;  // the last such column times sx, at most
  const std::int64_t inner_end = last_inner < 0 ? inner_begin : std::max(inner_begin, std::min(g.out_width, last_inner / g.sx + 1));
  for (std::int64_t oy = oy_begin; oy < oy_end; ++oy) {
    const float* dy_row = g.dy + ((n * g.out_height + oy) * g.out_width) * c;
    for (int i = 0; i < K; ++i) {
      const std::int64_t iy = oy * g.sy + i - g.py;
      if (iy < 0 || iy >= g.height) continue;
      const float* x_row = g.x + ((n * g.height + iy) * g.width) * c;
      for (std::int64_t group = 0; group < groups(c); ++group) {
        const std::int64_t c0 = group_start(group, c);
        float* sums = out + ((group * K + i) * K) * kLanes;
        Vec acc[K];
        __builtin_memcpy(acc, sums, sizeof acc);
        const auto tap = [&](std::int64_t ox, int j, const Vec& d) {
          Vec v;
          __builtin_memcpy(&v, x_row + (ox * g.sx + j - g.px) * c + c0, sizeof v);
          acc[j] += d * v;
        };
        const auto edge = [&](std::int64_t ox) {  // a column with taps outside the row
          Vec d;
          __builtin_memcpy(&d, dy_row + ox * c + c0, sizeof d);
          for (int j = 0; j < K; ++j)
            if (const std::int64_t ix = ox * g.sx + j - g.px; ix >= 0 && ix < g.width) tap(ox, j, d);
        };
        for (std::int64_t ox = 0; ox < inner_begin; ++ox) edge(ox);
        if (inner_end > inner_begin) {  // (else the first inner column's taps may lie outside x)
          const float *x = x_row + (inner_begin * g.sx - g.px) * c + c0, *dy = dy_row + inner_begin * c + c0;
          if (g.sx == 1)
            inner_columns<K, 1>(x, dy, c, inner_end - inner_begin, acc);
          else
            inner_columns<K, 2>(x, dy, c, inner_end - inner_begin, acc);
        }
        for (std::int64_t ox = inner_end; ox < g.out_width; ++ox) edge(ox);
        __builtin_memcpy(sums, acc, sizeof acc);
      }
    }
  }
}

[[gnu::target_clones("avx512f", "avx2", "default")]] void band_sums(const Geometry& g, std::int64_t kernel,
                                                                    std::int64_t n, std::int64_t oy_begin,
                                                                    std::int64_t oy_end, float* out) {
  switch (kernel) {
    case 5: return band_sums_of<5>(g, n, oy_begin, oy_end, out);
    case 7: return band_sums_of<7>(g, n, oy_begin, oy_end, out);
  }
  TORCH_INTERNAL_ASSERT(false, "depthwise weight gradient: no kernel for ", kernel, "x", kernel);
}

// `t` as the kernel reads it, channels_last with at least 16 channels: itself when it is, else a copy
// (zeros in the added channels).
at::Tensor kernel_input(const at::Tensor& t) {
  const at::Tensor packed = t.contiguous(at::MemoryFormat::ChannelsLast);
  if (t.size(1) >= kLanes) return packed;
  return at::constant_pad_nd(packed, {0, 0, 0, 0, 0, kLanes - t.size(1)}).contiguous(at::MemoryFormat::ChannelsLast);
}

// dW, in the layout of `weight` (channels x 1 x kernel x kernel), of a depthwise convolution without
// dilation. The work is split into bands of output rows of one image, a fixed split whatever the
// number of threads, and their sums are added up in band order: the same bits on any number of
// threads (on one CPU: the AVX-512 clone contracts multiply-adds, the others may not).
at::Tensor depthwise_weight_gradient(const at::Tensor& x, const at::Tensor& dy, const at::Tensor& weight,
                                     std::array<std::int64_t, 2> stride, std::array<std::int64_t, 2> padding) {
  const std::int64_t kernel = weight.size(2);
  constexpr std::int64_t kBandRows = 8;
  const at::Tensor kx = kernel_input(x), kdy = kernel_input(dy);
  const Geometry g{kx.data_ptr<float>(), kdy.data_ptr<float>(), kx.size(1), x.size(2), x.size(3), dy.size(2), dy.size(3),
                   stride[0], stride[1], padding[0], padding[1]};
  const std::int64_t bands_per_image = (g.out_height + kBandRows - 1) / kBandRows, bands = x.size(0) * bands_per_image;
  const std::int64_t band_size = groups(g.channels) * kernel * kernel * kLanes;  // (group, i, j, lane)
  std::vector<float> sums(static_cast<std::size_t>(bands * band_size), 0.0F);
  at::parallel_for(0, bands, 1, [&](std::int64_t first, std::int64_t last) {
    for (std::int64_t b = first; b < last; ++b) {  // b = n * bands_per_image + band
      const std::int64_t oy = b % bands_per_image * kBandRows;
      band_sums(g, kernel, b / bands_per_image, oy, std::min(oy + kBandRows, g.out_height), sums.data() + b * band_size);
    }
  });
  const std::int64_t channels = x.size(1), taps = kernel * kernel;
  at::Tensor dw = at::zeros_like(weight);  // the weight's strides: autograd then keeps the gradient as it is
  float* w = dw.data_ptr<float>();
  const auto tap_offset = [&](std::int64_t c, std::int64_t tap) {  // tap = i * kernel + j
    return c * dw.stride(0) + tap / kernel * dw.stride(2) + tap % kernel * dw.stride(3);
  };
  for (std::int64_t b = 0; b < bands; ++b)
    for (std::int64_t group = 0; group < groups(g.channels); ++group) {
      const float* s = sums.data() + b * band_size + group * taps * kLanes;
      // The lanes of this group's own channels (an overlapping last group leaves the first ones to the group before).
      for (std::int64_t c = std::max(group * kLanes, group_start(group, g.channels)); c < std::min(channels, (group + 1) * kLanes); ++c)
        for (std::int64_t tap = 0; tap < taps; ++tap) w[tap_offset(c, tap)] += s[tap * kLanes + c - group_start(group, g.channels)];
    }
  return dw;
}

struct DepthwiseConv : torch::autograd::Function<DepthwiseConv> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            std::int64_t sy, std::int64_t sx, std::int64_t py, std::int64_t px) {
    ctx->save_for_backward({x, weight});
    ctx->saved_data["geometry"] = std::vector<std::int64_t>{sy, sx, py, px};
    return at::conv2d(x, weight, {}, at::IntArrayRef{sy, sx}, at::IntArrayRef{py, px}, {1, 1}, x.size(1));
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &weight = saved[1], &dy = grad_outputs[0];
    const auto g = ctx->saved_data["geometry"].toIntVector();
    at::Tensor dx, dw;
    if (ctx->needs_input_grad(0))  // oneDNN's input gradient costs about what its forward pass does
      dx = std::get<0>(at::convolution_backward(dy, x, weight, std::nullopt, {g[0], g[1]}, {g[2], g[3]}, {1, 1}, false,
                                                {0, 0}, x.size(1), {true, false, false}));
    if (ctx->needs_input_grad(1)) dw = depthwise_weight_gradient(x, dy, weight, {g[0], g[1]}, {g[2], g[3]});
    return {dx, dw, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

bool depthwise_kernel_applies(const torch::nn::detail::ConvNdOptions<2>& o) {
  const auto* padding = std::get_if<torch::ExpandingArray<2>>(&o.padding());
  const std::int64_t k = (*o.kernel_size())[0];
  const auto& stride = *o.stride();
  return (k == 5 || k == 7) && (*o.kernel_size())[1] == k && o.groups() == o.in_channels() &&
         (stride[0] == 1 || stride[0] == 2) && (stride[1] == 1 || stride[1] == 2) &&
         o.out_channels() == o.in_channels() && (*o.dilation())[0] == 1 && (*o.dilation())[1] == 1 && padding &&
         !o.bias() && std::holds_alternative<torch::enumtype::kZeros>(o.padding_mode());
}

at::Tensor depthwise_conv2d(const at::Tensor& x, const at::Tensor& weight, const torch::nn::detail::ConvNdOptions<2>& o) {
  const auto& padding = std::get<torch::ExpandingArray<2>>(o.padding());
  return DepthwiseConv::apply(x, weight, (*o.stride())[0], (*o.stride())[1], (*padding)[0], (*padding)[1]);
}

}  // namespace nas
