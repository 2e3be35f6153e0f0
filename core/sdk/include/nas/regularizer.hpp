// Kind "regularizer": changes training batches (cutout, ...) or the network (drop path), in training only.
#pragma once

#include <cstdint>
#include <memory>

#include <ATen/core/Tensor.h>

#include "nas/api.hpp"
#include "nas/kinds.hpp"

namespace nas {

class Network;

/// Where training is: the step about to run, of how many.
struct TrainingStep {
  std::int64_t step = 0;
  std::int64_t total_steps = 1;
};

/// Both hooks run before every training step. A regularizer draws its randomness from the seed and
/// the step, never from state it carries, so a resumed run does exactly what an uninterrupted one does.
class NAS_API Regularizer {
 public:
  virtual ~Regularizer();
  /// May change the batch's images, float (N, C, H, W), in place.
  virtual void on_batch(at::Tensor& images, const TrainingStep& step);
  /// May change the network, e.g. its drop-path keep probabilities.
  virtual void on_step(Network& network, const TrainingStep& step);
};

struct RegularizerArgs {};

template <>
struct KindOf<Regularizer> {
  static constexpr std::string_view name = "regularizer";
  using Args = RegularizerArgs;
  using Ptr = std::unique_ptr<Regularizer>;
};

}  // namespace nas
