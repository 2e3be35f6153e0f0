// The services the host hands to stages and plugins (plugins keep no globals of their own).
//
// Build one with designated initializers, so that a field added later cannot shift the others:
//   nas::Context context{.log = log, .seed = 7, .registry = &registry};
#pragma once

#include <cstdint>
#include <filesystem>

#include <c10/core/Device.h>

#include "nas/api.hpp"
#include "nas/seed.hpp"

namespace nas {

class Logger;
class Registry;

struct Context {
  Logger& log;
  std::uint64_t seed = 0;             ///< the experiment seed; derive streams from it (nas/seed.hpp), never share one
  std::filesystem::path run_dir;      ///< where outputs go (empty for dry runs and tests)
  c10::Device device = c10::kCPU;     ///< a GPU where there is one, else the CPU
  const Registry* registry = nullptr; ///< to build other plugins (a space builds its ops by name)
};

}  // namespace nas
