// Running a resolved pipeline: the run directory, the plan, the stages in order.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "nas/api.hpp"
#include "nas/config.hpp"
#include "nas/log.hpp"
#include "nas/registry.hpp"

namespace nas {

/// Creates the run's own folder: `requested` if given (it must not exist or be empty), else
/// OUTPUT_DIR/NAME/UTC-TIMESTAMP/ with a numeric suffix when that exists. Never reuses a run's folder.
NAS_API std::filesystem::path make_run_dir(const Experiment& experiment,
                                           const std::optional<std::filesystem::path>& requested);

/// What a run would do: stages in order, each plugin with its key, version and file.
NAS_API std::string plan_text(const PipelineConfig& config);

/// Saves the resolved config in `run_dir` (unless `resumed`: it is already there), logs to
/// run_dir/log.txt, sets threads and device, and runs every stage in order. A resumed run's stages
/// continue from the checkpoints they left in run_dir.
NAS_API void run_pipeline(const PipelineConfig& config, const Registry& registry, Logger& log,
                          const std::filesystem::path& run_dir, bool resumed = false);

}  // namespace nas
