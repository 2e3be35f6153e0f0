// Kind "space": a search space. Controllers see it as a sequence of categorical decisions; files,
// stores and builders use its genotype text (YAML). The space maps one to the other, checks and
// canonicalizes genotypes, and builds trainable networks from them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <torch/nn/module.h>

#include "nas/api.hpp"
#include "nas/controller.hpp"
#include "nas/kinds.hpp"
#include "nas/schema.hpp"

namespace nas {

/// What a network is built for: the data's image shape and classes (from the dataset).
struct DataShape {
  std::int64_t num_classes = 10;
  std::int64_t channels = 3;  ///< 1 for grayscale
  std::int64_t height = 32;
  std::int64_t width = 32;
};

struct NetworkOutput {
  at::Tensor logits;
  at::Tensor aux_logits;  ///< undefined unless the network has an auxiliary head and is training
};

/// A network's cells for drop path (a capability a network may offer, see Network::drop_path_cells).
class NAS_API DropPathCells {
 public:
  virtual ~DropPathCells();
  /// Number of cells, stem cells included, counted from the input side (drop path's depth).
  virtual std::int64_t num_cells() const = 0;
  /// Keep probability of every op output (except ops that declare no_drop_path) in each cell, for the
  /// following training steps. Size num_cells(); all 1 turns drop path off. Off in eval().
  virtual void set_drop_path_keep(const std::vector<double>& keep_per_cell) = 0;
};

/// A built network. Its parameters() include the auxiliary head's, if it has one.
class NAS_API Network : public torch::nn::Module {
 public:
  ~Network() override;
  virtual NetworkOutput forward(const at::Tensor& images) = 0;
  /// The output shape of every stage (stem, cells, logits; the space names them) for `images`.
  virtual std::vector<std::pair<std::string, std::vector<std::int64_t>>> stage_shapes(const at::Tensor& images) = 0;
  /// The drop-path capability: nullptr for a network without cells to drop paths in.
  virtual DropPathCells* drop_path_cells();
  /// Parameters of the auxiliary head only (0 without one), so that counts can leave it out.
  virtual std::int64_t aux_head_parameters() const;
};

class NAS_API Space {
 public:
  virtual ~Space();
  /// The decisions, in order; the number of choices may depend on the position.
  virtual std::vector<Decision> decisions() const = 0;
  /// The genotype (YAML text) of a decision vector; throws UsageError if a decision is out of range.
  virtual std::string decode(const std::vector<std::int64_t>& decisions) const = 0;
  /// Parses and checks a genotype and returns its canonical text: two genotypes that build the same
  /// network give the same text. Throws UsageError naming `source` and the entry.
  virtual std::string canonical(const std::string& genotype, const std::string& source) const = 0;
  /// The network of `genotype` for `data`, a member of the space's model family: `model` holds the
  /// parameters of the family's schema (Registrar::add's ModelFamily; it may hold others too). Throws
  /// UsageError, naming the parameter and the smallest value that works, for parameters that would
  /// leave a layer without channels.
  virtual std::shared_ptr<Network> build(const std::string& genotype, const Params& model, const DataShape& data) const = 0;
  /// A short name of the model family member `model` describes, for logs (NASNet: "6@768").
  virtual std::string model_name(const Params& model) const = 0;
  /// Genotype text in another format (e.g. "darts") and back.
  virtual std::vector<std::string> formats() const = 0;
  virtual std::string export_as(const std::string& genotype, std::string_view format) const = 0;
  virtual std::string import_from(const std::string& text, std::string_view format, const std::string& source) const = 0;
  /// A Graphviz drawing of the genotype's cells.
  virtual std::string to_dot(const std::string& genotype) const = 0;
};

struct SpaceArgs {};

template <>
struct KindOf<Space> {
  static constexpr std::string_view name = "space";
  using Args = SpaceArgs;
  using Ptr = std::unique_ptr<Space>;
};

/// Drop path: zeroes `x` for each example (dim 0) with probability 1 - keep and scales the rest by
/// 1/keep, so the expectation is unchanged. For spaces' cells, in training only. With keep 1 it
/// returns `x` and draws no random number.
NAS_API at::Tensor drop_path(const at::Tensor& x, double keep);

/// torch::cat along channels (dim 1), except that each input's gradient comes back contiguous in the
/// input's own memory format. Why: slices of a channels_last gradient along channels are neither
/// contiguous nor channels_last, and BatchNorm's backward takes a generic path on such strides
/// (5x slower measured: 7.1 vs 1.3 ms for a 32x32x32x32 batch). Cells should concatenate with this.
NAS_API at::Tensor concat_channels(at::TensorList xs);

/// Every second pixel of `x` (N, C, H, W) from row and column `offset` (0 or 1): a dense tensor in x's
/// memory format of ceil(H/2) x ceil(W/2) pixels, zero where the grid passes the image's edge (the
/// shifted path of TF's factorized reduction pads right and bottom). Its gradient comes back in x's
/// memory format too. Why: slicing's gradient is a new NCHW tensor, and the channels_last ReLU before
/// it then takes the backward of mixed layouts, 10x slower (NASNet-A Large: about 60 ms a step).
NAS_API at::Tensor every_second_pixel(const at::Tensor& x, std::int64_t offset);

/// A stable 64-bit hash (hex) of the canonical genotype: equal for genotypes that build the same network.
NAS_API std::string architecture_hash(const Space& space, const std::string& genotype);

}  // namespace nas
