// The services the host hands to stages and plugins (plugins keep no globals of their own).
#pragma once

#include <cstdint>
#include <filesystem>

#include <c10/core/Device.h>

#include "nas/api.hpp"

namespace nas {

class Cluster;
struct EvaluatorProcesses;
class Logger;
class Registry;

struct Context {
  Logger& log;
  std::uint64_t seed = 0;             ///< the experiment seed; derive, never share, generators from it
  std::filesystem::path run_dir;      ///< where outputs go (empty for dry runs and tests)
  c10::Device device = c10::kCPU;     ///< a GPU where there is one, else the CPU
  const Registry* registry = nullptr; ///< to build other plugins (a space builds its ops by name)
  const Cluster* cluster = nullptr;   ///< the run's processes and their store, when there are several
  /// How to start evaluator processes (set by nas-host; empty: stages evaluate in this process).
  const EvaluatorProcesses* evaluator_processes = nullptr;
};

/// A seed for one use of the experiment seed: stream names the use, index the item (a child, an
/// epoch); different (stream, index) give independent generators.
NAS_API std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream, std::uint64_t index);

}  // namespace nas
