// Running a resolved pipeline: the run directory, the plan, the stages in order.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

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

struct RunOptions {
  bool resumed = false;   ///< the stages continue from what they left in run_dir
  std::int64_t nproc = 0; ///< worker processes to start on this machine (nas-host run --nproc)
  /// How to start one worker: a command line that runs `nas-host run --resume RUN_DIR` (RUN_DIR is
  /// appended), with plugin options as the coordinator's.
  std::vector<std::string> worker_command;
};

/// Rank of this process in the world of its launcher (RANK from torchrun or nas-host --nproc,
/// SLURM_PROCID from SLURM); 0 when it has none. Rank 0 runs the pipeline, the others serve it.
NAS_API std::int64_t launcher_rank();

/// Saves the resolved config in `run_dir` (unless resumed: it is already there), logs to
/// run_dir/log.txt, sets threads and device, and runs every stage in order. With several processes
/// (options.nproc, or torchrun/SLURM), this one is rank 0: it serves the run's c10d store and
/// hands evaluations to the workers; with nproc it starts them and waits for them at the end.
NAS_API void run_pipeline(const PipelineConfig& config, const Registry& registry, Logger& log,
                          const std::filesystem::path& run_dir, const RunOptions& options = {});

/// A worker (rank > 0): joins rank 0's run through the store, logs to RUN_DIR/worker-<rank>.log, and
/// serves every stage that has work for workers until rank 0 is done with it.
NAS_API void serve_pipeline(const PipelineConfig& config, const Registry& registry, Logger& log);

}  // namespace nas
