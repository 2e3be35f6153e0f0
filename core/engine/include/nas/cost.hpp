// What a forward pass costs: parameters and multiply-adds, counted per layer as it runs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nas/api.hpp"
#include "nas/space.hpp"

namespace nas {

struct LayerCost {
  std::string op;                      ///< "conv" or "linear"
  std::vector<std::int64_t> output;    ///< output shape
  std::int64_t mult_adds = 0;
};

struct ModelCost {
  std::int64_t params = 0;     ///< auxiliary head excluded
  std::int64_t mult_adds = 0;  ///< of one forward pass of one image
  std::vector<LayerCost> layers;
};

/// Runs one forward pass (eval mode, no grad) of a batch of one `input` image of shape (C, H, W) and
/// counts the multiply-adds of every convolution (output elements x input channels per group x kernel
/// area) and every linear layer (output elements x input features). Pools, batch norm, activations and
/// additions are not counted, as in the paper.
NAS_API ModelCost measure_cost(Network& network, const std::vector<std::int64_t>& input);

}  // namespace nas
