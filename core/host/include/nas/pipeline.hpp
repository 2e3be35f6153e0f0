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

/// The file a run writes last, once every stage has finished: a run folder with it is complete.
NAS_API std::filesystem::path finished_marker(const std::filesystem::path& run_dir);

/// What a run would do: stages in order, each plugin with its key, version and file.
NAS_API std::string plan_text(const PipelineConfig& config);

struct RunOptions {
  bool resumed = false;   ///< the stages continue from what they left in run_dir
  std::int64_t nproc = 0; ///< worker processes to start on this machine (nas-host run --nproc)
  /// The nas-host executable that starts this process's workers (`nas-host run --resume RUN_DIR`) and
  /// evaluator processes (`nas-host evaluator`); empty: none, stages evaluate in this process.
  std::string executable;
  /// Options as this process was given them (--plugin-path ..., --log-level), for those processes.
  std::vector<std::string> child_args;
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
NAS_API void serve_pipeline(const PipelineConfig& config, const Registry& registry, Logger& log, const RunOptions& options);

/// An evaluator process (`nas-host evaluator`, started by a search or retrain stage): loads the
/// config saved in `run_dir` and the plugins (`plugin_dirs` first; the default folder unless
/// `default_plugins` is false), builds stage `stage`'s evaluator with `threads` intra-op threads and
/// evaluates what its parent sends over descriptor `fd` until the parent closes it. Every error, the
/// setup's too, goes to the parent. Returns the exit code.
NAS_API int serve_evaluator_process(const std::filesystem::path& run_dir, const std::string& stage,
                                    const std::vector<std::filesystem::path>& plugin_dirs, bool default_plugins,
                                    int threads, Logger& log, int fd);

}  // namespace nas
