// The pipeline config: one YAML file plus command-line overrides, validated against the core
// schemas, the stages' schemas and each chosen plugin's schema.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "nas/api.hpp"
#include "nas/error.hpp"
#include "nas/options.hpp"
#include "nas/registry.hpp"
#include "nas/stage.hpp"

namespace nas {

/// Where a config value came from: "file:line:column", or a command-line override.
struct NAS_API Location {
  std::string file;
  int line = 0;    ///< 1-based; 0 when unknown
  int column = 0;  ///< 1-based
  std::string str() const;
};

/// One problem in a config: where, which key path, what was expected.
struct NAS_API Diagnostic {
  Location where;
  std::string key;  ///< dotted path, e.g. "search.dataset.samples"
  std::string message;
  std::string str() const;  ///< "file:3:5: experiment.seed: expected an integer >= 0, got 'x'"
};

/// Every problem found in a config (exit code 2); what() lists them one per line.
class NAS_API ConfigError : public UsageError {
 public:
  explicit ConfigError(std::vector<Diagnostic> diagnostics);
  ~ConfigError() override;
  const std::vector<Diagnostic>& diagnostics() const { return diagnostics_; }

 private:
  std::vector<Diagnostic> diagnostics_;
};

/// A parsed config file with overrides applied, before validation. Plugin paths are read from it
/// first, because the plugins they hold are needed to validate the rest.
class NAS_API ConfigDocument {
 public:
  /// Parses `file` and applies `overrides` ("key.path=value", value in YAML syntax).
  static ConfigDocument load(const std::filesystem::path& file, const std::vector<std::string>& overrides);

  const std::filesystem::path& file() const;
  /// `plugin_paths`, each relative to the config file's folder.
  std::vector<std::filesystem::path> plugin_paths() const;
  /// Appends folders (the command line's --plugin-path) to `plugin_paths`, as absolute paths, so that
  /// the resolved config a run saves names every plugin folder it used (--resume needs them).
  void add_plugin_paths(const std::vector<std::filesystem::path>& dirs);

  struct Impl;  ///< the YAML tree (config_document.hpp, internal to the host)
  explicit ConfigDocument(std::shared_ptr<Impl> impl);
  const Impl& impl() const { return *impl_; }

 private:
  std::shared_ptr<Impl> impl_;
};

/// The config's `experiment` section.
struct Experiment {
  std::string name;                    ///< empty in the file: the config file's name
  std::int64_t seed = 0;
  std::string output_dir = "runs";
  std::int64_t threads = 0;            ///< intra-op threads; 0 = all cores
  std::int64_t processes_per_gpu = 1;  ///< a process uses GPU LOCAL_RANK / processes_per_gpu

  static auto fields() {
    using O = Experiment;
    return std::tuple{
        field("name", &O::name).help("names the run folder; default: the config file's name"),
        field("seed", &O::seed).at_least(0).help("seed of every random generator in the run"),
        field("output_dir", &O::output_dir).help("runs go to OUTPUT_DIR/NAME/UTC-TIMESTAMP/ (relative: to the current "
                                                 "folder)"),
        field("threads", &O::threads).at_least(0).help("intra-op threads for LibTorch; 0 = all cores"),
        field("processes_per_gpu", &O::processes_per_gpu).range(1, 1024).help(
            "processes of a machine that share one GPU: a process uses GPU LOCAL_RANK / processes_per_gpu")};
  }
};

/// A fully validated pipeline.
struct PipelineConfig {
  std::filesystem::path file;
  Experiment experiment;
  std::vector<std::filesystem::path> plugin_paths;
  std::vector<StageConfig> stages;  ///< in the order they run
  std::string resolved_yaml;        ///< every default filled in; what --dry-run prints and a run saves
};

/// Validates the whole document; throws ConfigError with every problem found.
NAS_API PipelineConfig resolve(const ConfigDocument& doc, const Registry& registry,
                               const std::vector<StageDef>& stages = builtin_stages());

/// Parameters from command-line KEY=VALUE strings (VALUE in YAML syntax), validated against `schema`
/// like a config section, defaults filling the rest; throws ConfigError naming each bad assignment.
NAS_API Params parse_assignments(const Schema& schema, const std::vector<std::string>& assignments);
/// The same for the model parameters of `space` (its ModelFamily), `preset=NAME` included: a preset's
/// values fill the keys the assignments leave out.
NAS_API Params parse_model_assignments(const Entry& space, const std::vector<std::string>& assignments);

/// The core schema of the `experiment` section.
NAS_API const Schema& experiment_schema();

}  // namespace nas
