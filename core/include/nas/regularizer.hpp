// Kind "regularizer": changes training batches (cutout, ...) or the model (drop path) in training only.
#pragma once

#include <memory>

#include <ATen/core/Tensor.h>

#include "nas/api.hpp"
#include "nas/kinds.hpp"

namespace nas {

class NAS_API Regularizer {
 public:
  virtual ~Regularizer();
  /// Changes a training batch of images, float (N, C, H, W), in place.
  virtual void on_batch(at::Tensor& images) = 0;
};

struct RegularizerArgs {};

template <>
struct KindOf<Regularizer> {
  static constexpr std::string_view name = "regularizer";
  using Args = RegularizerArgs;
  using Ptr = std::unique_ptr<Regularizer>;
};

}  // namespace nas
