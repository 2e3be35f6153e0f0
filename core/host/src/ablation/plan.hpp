// An ablation's plan: the runs its file expands to (arms x grid points x seeds), each a validated
// pipeline config, and what the statistics compare. Saved in the ablation's folder as plan.json and
// one config file per run, so that --resume needs nothing else.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "ablation/statistics.hpp"
#include "nas/ablation.hpp"
#include "nas/registry.hpp"

namespace nas::ablation {

/// A budget at which arms are compared: after so many evaluations, after so many seconds of search,
/// or at the end of the run.
struct Checkpoint {
  enum class Kind { evaluations, seconds, end } kind = Kind::end;
  double value = 0;
  std::string label() const;  ///< "25 evaluations", "60 s", "end"
};

struct Settings {
  std::vector<std::string> metrics;  ///< best_reward, final_score, test_accuracy
  std::vector<Checkpoint> checkpoints;
  std::string baseline;              ///< the arm the others are tested against
  bool paired = true;                ///< same seed, same data: Wilcoxon signed-rank, else Mann-Whitney U
  double alpha = 0.05;               ///< significance level, after Holm's correction
  stats::BootstrapOptions bootstrap;
};

struct Run {
  std::string id;    ///< its folder in the ablation's: ARM[/AXIS=VALUE,...]/seed-K
  std::string arm;
  std::vector<std::pair<std::string, std::string>> grid;  ///< axis key path, value (YAML)
  std::int64_t seed = 0;
  bool trains = false;       ///< trains networks (a train stage or a training evaluator): the jobs heuristic
  std::int64_t threads = 0;  ///< the config's experiment.threads (0: not set)
  std::string config;        ///< the resolved config (only in a plan just made)
};

struct Plan {
  std::string name;
  std::filesystem::path source;      ///< the ablation file
  std::filesystem::path output_dir;  ///< where its folder goes (a plan just made)
  std::vector<std::string> arms;  ///< in the file's order
  std::vector<std::string> axes;
  std::size_t grid_points = 1;
  std::vector<std::int64_t> seeds;
  std::vector<Run> runs;  ///< arm by arm, grid point by grid point, seed by seed
  Settings settings;
  std::vector<std::string> warnings;  ///< what is valid but probably not meant (a plan just made)
};

/// Reads and expands an ablation file, applies `overrides` (to the file's own keys, or else to every
/// run's base config) and validates every run against the schemas of the plugins `load_plugins`
/// loads (with the base's plugin_paths). Throws ConfigError with every problem, located in the
/// ablation file (or the base config, or the command line).
/// `plugin_dirs` (the command line's --plugin-path) are recorded in every run's config.
Plan make_plan(const std::filesystem::path& file, const std::vector<std::string>& overrides,
               const RegistryLoader& load_plugins, const std::vector<std::filesystem::path>& plugin_dirs);

/// The settings as plan.json and ablation.json hold them.
nlohmann::ordered_json settings_json(const Settings& settings);

/// Writes plan.json, the ablation file's copy and every run's config into `dir`.
void write_plan(const Plan& plan, const std::filesystem::path& dir);
/// The plan saved in `dir` (without the configs, which stay in their files).
Plan read_plan(const std::filesystem::path& dir);

std::filesystem::path run_dir(const std::filesystem::path& dir, const Run& run);
std::filesystem::path config_file(const std::filesystem::path& dir, const Run& run);
/// The run's marker of success (pipeline.cpp writes it last).
bool finished(const std::filesystem::path& dir, const Run& run);

/// Reads every finished run's results and writes ablation.csv, ablation.json and ablation.md in
/// `dir`; returns ablation.md's main tables (for the terminal).
std::string analyze(const Plan& plan, const std::filesystem::path& dir);

}  // namespace nas::ablation
