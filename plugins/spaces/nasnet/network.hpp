// NASNet cells and the N@F network built from a genotype, with the TF reference model's conventions.
#pragma once

#include <memory>

#include "genotype.hpp"
#include "nas/context.hpp"
#include "nas/options.hpp"
#include "nas/registry.hpp"
#include "nas/space.hpp"

namespace nasnet {

/// The N@F model family: what the NASNet space builds from a genotype (its ModelFamily's schema).
struct ModelOptions {
  std::string layout = "cifar";    ///< "cifar" or "imagenet" (stem conv + two reduction stem cells)
  std::int64_t N = 2;              ///< normal cells per stage
  std::int64_t F = 96;             ///< channels entering the classifier
  double stem_multiplier = 3.0;
  double dropout = 0.0;            ///< before the classifier
  bool aux_head = false;
  /// TF's skip_reduction_layer_input: the normal cell after a reduction takes as h_{i-1} the cell
  /// before the reduction's input rather than the reduction's input (NASNet-A large uses it).
  bool skip_reduction_input = false;

  static auto fields() {
    using O = ModelOptions;
    return std::tuple{
        nas::field("layout", &O::layout).one_of({"cifar", "imagenet"}).help("network layout"),
        nas::field("N", &O::N).range(1, 100).help("normal cells per stage"),
        nas::field("F", &O::F).range(4, 100000).help("filters of the penultimate layer"),
        nas::field("stem_multiplier", &O::stem_multiplier).range(0.01, 100).help("stem width multiplier"),
        nas::field("dropout", &O::dropout).range(0, 0.99).help("dropout before the classifier"),
        nas::field("aux_head", &O::aux_head).help("auxiliary head after stage 2"),
        nas::field("skip_reduction_input", &O::skip_reduction_input).help(
            "after a reduction, feed the normal cell the input before it (TF NASNet-A large)")};
  }
};

/// The schema and the presets (the paper's models) of the family.
nas::ModelFamily model_family();

/// Builds the network of `genotype` for `data`; ops come from the registry in `context`, by name.
/// Throws UsageError naming F or stem_multiplier, and the smallest value that works, where they
/// would leave a layer without channels.
std::shared_ptr<nas::Network> build_network(const Genotype& genotype, const ModelOptions& model,
                                            const nas::DataShape& data, const nas::Context& context);

}  // namespace nasnet
