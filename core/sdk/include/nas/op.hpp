// Kind "op": an operation inside a cell, an nn::Module built from (in channels, out channels, stride).
#pragma once

#include <cstdint>
#include <memory>

#include <torch/nn/module.h>

#include "nas/api.hpp"
#include "nas/kinds.hpp"

namespace nas {

struct OpArgs {
  std::int64_t in_channels = 0;
  std::int64_t out_channels = 0;
  std::int64_t stride = 1;  ///< 1 keeps the spatial size, 2 halves it
};

class NAS_API Op : public torch::nn::Module {
 public:
  ~Op() override;
  /// (N, in_channels, H, W) -> (N, out_channels, H / stride, W / stride)
  virtual at::Tensor forward(const at::Tensor& x) = 0;
};

template <>
struct KindOf<Op> {
  static constexpr std::string_view name = "op";
  using Args = OpArgs;
  using Ptr = std::shared_ptr<Op>;
};

}  // namespace nas
