// Search-space helpers every space shares: drop path, channel concatenation, architecture hashes.
#include "nas/space.hpp"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <torch/csrc/autograd/custom_function.h>

#include "nas/error.hpp"

namespace nas {

Network::~Network() = default;
DropPathCells::~DropPathCells() = default;
DropPathCells* Network::drop_path_cells() { return nullptr; }
std::int64_t Network::aux_head_parameters() const { return 0; }
Space::~Space() = default;

at::Tensor drop_path(const at::Tensor& x, double keep) {
  if (keep >= 1.0) return x;  // nothing dropped, and no random number drawn (evaluation relies on it)
  std::vector<std::int64_t> shape(static_cast<std::size_t>(x.dim()), 1);
  shape[0] = x.size(0);
  at::Tensor mask = at::empty(shape, x.options()).bernoulli_(keep);
  return x * mask / keep;
}

namespace {

struct ConcatChannels : torch::autograd::Function<ConcatChannels> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, at::TensorList xs) {
    std::vector<std::int64_t> widths, formats;
    for (const at::Tensor& x : xs) {
      widths.push_back(x.size(1));
      formats.push_back(static_cast<std::int64_t>(x.suggest_memory_format()));
    }
    ctx->saved_data["widths"] = widths;
    ctx->saved_data["formats"] = formats;
    return at::cat(xs, 1);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const std::vector<std::int64_t> widths = ctx->saved_data["widths"].toIntVector();
    const std::vector<std::int64_t> formats = ctx->saved_data["formats"].toIntVector();
    torch::autograd::variable_list parts = grad[0].split_with_sizes(widths, 1);
    for (std::size_t i = 0; i < parts.size(); ++i)
      parts[i] = parts[i].contiguous(static_cast<at::MemoryFormat>(formats[i]));
    return parts;
  }
};

struct EverySecondPixel : torch::autograd::Function<EverySecondPixel> {
  static at::Tensor grid(const at::Tensor& x, std::int64_t offset) {
    return x.slice(2, offset, std::nullopt, 2).slice(3, offset, std::nullopt, 2);
  }
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, std::int64_t offset) {
    const at::MemoryFormat format = x.suggest_memory_format();
    ctx->saved_data["sizes"] = x.sizes().vec();
    ctx->saved_data["format"] = static_cast<std::int64_t>(format);
    ctx->saved_data["offset"] = offset;
    const at::Tensor sampled = grid(x, offset);
    at::Tensor out = at::empty({x.size(0), x.size(1), (x.size(2) + 1) / 2, (x.size(3) + 1) / 2},
                               x.options().memory_format(format));
    // Past the edge (odd sizes, offset 1): the last row or column is padding.
    if (sampled.size(2) < out.size(2)) out.select(2, -1).zero_();
    if (sampled.size(3) < out.size(3)) out.select(3, -1).zero_();
    out.slice(2, 0, sampled.size(2)).slice(3, 0, sampled.size(3)).copy_(sampled);
    return out;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const auto format = static_cast<at::MemoryFormat>(ctx->saved_data["format"].toInt());
    // empty + zero_: at::zeros leaves out the options' memory format (the gradient would come back NCHW).
    at::Tensor dx = at::empty(ctx->saved_data["sizes"].toIntVector(), grad[0].options().memory_format(format)).zero_();
    at::Tensor sampled = grid(dx, ctx->saved_data["offset"].toInt());
    sampled.copy_(grad[0].slice(2, 0, sampled.size(2)).slice(3, 0, sampled.size(3)));
    return {dx, at::Tensor()};
  }
};

}  // namespace

at::Tensor concat_channels(at::TensorList xs) { return ConcatChannels::apply(xs); }

at::Tensor every_second_pixel(const at::Tensor& x, std::int64_t offset) {
  if (x.dim() != 4 || (offset != 0 && offset != 1))
    throw UsageError(fmt::format("every_second_pixel: expected an (N, C, H, W) tensor and offset 0 or 1, got {} "
                                 "dimensions and offset {}", x.dim(), offset));
  return EverySecondPixel::apply(x, offset);
}

std::string architecture_hash(const Space& space, const std::string& genotype) {
  // FNV-1a: stable across platforms and runs (std::hash is not), and enough for dedup in a store.
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char c : space.canonical(genotype, "<genotype>")) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return fmt::format("{:016x}", hash);
}

}  // namespace nas
