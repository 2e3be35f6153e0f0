// Ablation studies (`nas-host ablate`): one base pipeline config, arms that override any of its keys,
// optional grid axes and seeds, expanded into ordinary runs inside one folder, run in parallel and
// compared with rank statistics (docs/ablation.md).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "nas/api.hpp"
#include "nas/log.hpp"
#include "nas/registry.hpp"

namespace nas {

/// Loads the plugins, with the folders a config's plugin_paths names.
using RegistryLoader = std::function<Registry(const std::vector<std::filesystem::path>& config_plugin_dirs)>;

struct AblationOptions {
  std::int64_t jobs = 0;   ///< runs at once in this process; 0: chosen from the cores, memory and runs
  std::int64_t nproc = 0;  ///< further `nas-host ablate` processes to start on this machine, sharing the runs
  bool dry_run = false;    ///< print and validate the runs, run nothing
  /// Plugin folders (--plugin-path), recorded in every run's config.
  std::vector<std::filesystem::path> plugin_dirs;
  /// The nas-host executable each run is started with (`nas-host run`), and the options for it
  /// (--no-default-plugins, --log-level).
  std::string executable;
  std::vector<std::string> child_args;
};

/// `nas-host ablate FILE [KEY.PATH=VALUE ...]`: an override of one of the ablation file's own keys
/// (seeds, arms, checkpoints, ...) changes the file; any other changes the base config of every run.
/// Validates every run first (ConfigError naming the ablation file's lines), then runs them all and
/// writes ablation.csv, ablation.json and ablation.md. Returns the exit code: 0 when every run
/// finished, 1 when some failed (the statistics then cover those that finished).
NAS_API int ablate(const std::filesystem::path& file, const std::vector<std::string>& overrides,
                   const RegistryLoader& load_plugins, Logger& log, const AblationOptions& options);

/// `nas-host ablate --resume DIR`: runs what is not finished in the ablation folder DIR (an interrupted
/// run continues from its own checkpoints; a finished one is not repeated), then the statistics.
NAS_API int resume_ablation(const std::filesystem::path& dir, Logger& log, const AblationOptions& options);

}  // namespace nas
