// Search-space helpers every space shares: hashing, sampling and mutating decision vectors.
#include "nas/space.hpp"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <torch/csrc/autograd/custom_function.h>

#include "nas/error.hpp"

namespace nas {

Network::~Network() = default;
Space::~Space() = default;

at::Tensor drop_path(const at::Tensor& x, double keep) {
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

}  // namespace

at::Tensor concat_channels(at::TensorList xs) { return ConcatChannels::apply(xs); }

std::string architecture_hash(const Space& space, const std::string& genotype) {
  // FNV-1a: stable across platforms and runs (std::hash is not), and enough for dedup in a store.
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char c : space.canonical(genotype, "<genotype>")) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return fmt::format("{:016x}", hash);
}

std::vector<std::int64_t> sample_decisions(const std::vector<Decision>& decisions, std::mt19937_64& rng) {
  std::vector<std::int64_t> values;
  values.reserve(decisions.size());
  for (const Decision& d : decisions) values.push_back(std::uniform_int_distribution<std::int64_t>(0, d.choices - 1)(rng));
  return values;
}

std::vector<std::int64_t> mutate_decisions(const std::vector<Decision>& decisions, std::vector<std::int64_t> values,
                                           std::mt19937_64& rng) {
  if (values.size() != decisions.size())
    throw Error(fmt::format("mutate: {} values for {} decisions", values.size(), decisions.size()));
  std::vector<std::size_t> mutable_positions;
  for (std::size_t i = 0; i < decisions.size(); ++i)
    if (decisions[i].choices > 1) mutable_positions.push_back(i);
  if (mutable_positions.empty()) return values;
  std::size_t at = mutable_positions[std::uniform_int_distribution<std::size_t>(0, mutable_positions.size() - 1)(rng)];
  // Another value, uniform among the other choices.
  std::int64_t other = std::uniform_int_distribution<std::int64_t>(0, decisions[at].choices - 2)(rng);
  values[at] = other >= values[at] ? other + 1 : other;
  return values;
}

}  // namespace nas
