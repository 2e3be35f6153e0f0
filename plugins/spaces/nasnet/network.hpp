// NASNet cells and the N@F network built from a genotype, with the TF reference model's conventions.
#pragma once

#include <memory>

#include "genotype.hpp"
#include "nas/context.hpp"
#include "nas/space.hpp"

namespace nasnet {

/// Builds the network of `genotype` for `spec`; ops come from the registry in `context`, by name.
std::shared_ptr<nas::Network> build_network(const Genotype& genotype, const nas::ModelSpec& spec,
                                            const nas::Context& context);

}  // namespace nasnet
