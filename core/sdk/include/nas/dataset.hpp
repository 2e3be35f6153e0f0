// Kind "dataset": labelled images, read by index.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "nas/api.hpp"
#include "nas/kinds.hpp"

namespace nas {

enum class Split { train, test };

struct Example {
  at::Tensor image;  ///< float (C, H, W), values in [0, 1]
  std::int64_t label = 0;
};

struct DatasetInfo {
  std::int64_t channels = 0;
  std::int64_t height = 0;  ///< 0 when images differ in size (an image folder before resizing)
  std::int64_t width = 0;
  std::vector<std::string> class_names;  ///< its size is the number of classes
  std::vector<double> mean;              ///< per channel, of the training images, for normalization
  std::vector<double> std;
};

class NAS_API Dataset {
 public:
  virtual ~Dataset();
  virtual DatasetInfo info() const = 0;
  virtual std::int64_t size() const = 0;
  /// Must be safe to call from several threads at once.
  virtual Example get(std::int64_t index) const = 0;
  /// The label alone (splits need every label; decoding every image for them would be slow).
  virtual std::int64_t label(std::int64_t index) const;
};

struct DatasetArgs {
  Split split = Split::train;
};

template <>
struct KindOf<Dataset> {
  static constexpr std::string_view name = "dataset";
  using Args = DatasetArgs;
  using Ptr = std::unique_ptr<Dataset>;
};

}  // namespace nas
