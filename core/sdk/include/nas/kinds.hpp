// The plugin kinds. Adding a kind: one line here, plus an interface header that specializes KindOf.
#pragma once

#include <array>
#include <string_view>

namespace nas {

struct KindInfo {
  std::string_view name;     ///< key prefix: "controller" in "controller/ppo"
  std::string_view folder;   ///< source folder under plugins/
  std::string_view summary;  ///< one line for `nas-host plugins list`
};

inline constexpr std::array<KindInfo, 7> kinds{{
    {"op", "ops", "a cell operation: an nn::Module built from (in channels, out channels, stride)"},
    {"controller", "controllers", "proposes architectures as decision vectors and learns from their rewards"},
    {"dataset", "datasets", "labelled images, read by index"},
    {"regularizer", "regularizers", "changes training batches or the model during training"},
    {"space", "spaces", "a search space: decisions, genotypes, and the networks they build"},
    {"evaluator", "evaluators", "turns a proposed architecture into a reward (trains it, looks it up, ...)"},
    {"scheduler", "schedulers", "multi-fidelity search: which children train further and which stop early"},
}};

/// Maps an interface type to its kind. Each interface header specializes it with:
///   static constexpr std::string_view name;  // one of kinds[].name
///   using Args = ...;                        // what the caller passes beside the parameters
///   using Ptr = ...;                         // what a factory returns
template <class Interface>
struct KindOf;

}  // namespace nas
