// The built-in stages, one file each (internal to the core).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "nas/stage.hpp"
#include "nas/store.hpp"

namespace nas {
class Evaluator;
class Space;
}

namespace nas::stages {

StageDef dataset_stats();
StageDef search();
StageDef select();
StageDef retrain();

/// The text of a genotype file; UsageError naming `stage` and the file when it cannot be read.
std::string read_genotype_file(const std::string& stage, const std::filesystem::path& file);

/// The stage's `space` plugin.
std::shared_ptr<const Space> make_space(const StageConfig& stage, const Registry& registry, const StageContext& context);
/// The evaluator `entry` with `params`, the space and the stage's `dataset` (if it has one) and
/// `regularizers`.
std::unique_ptr<Evaluator> make_evaluator(const StageConfig& stage, const Registry& registry, const StageContext& context,
                                          std::shared_ptr<const Space> space, const Entry& entry, const Params& params);

/// Writes dir/<rank>.genotype for each row (best first, comment lines giving rank, reward, evaluation,
/// hash and the space, `space_choice`) and returns a table for the log and the list as JSON.
std::pair<std::string, nlohmann::ordered_json> write_ranked(const std::vector<StoredEvaluation>& ranked,
                                                            const Space& space, const PluginChoice& space_choice,
                                                            const std::filesystem::path& dir, const std::string& source);
StageDef train();
StageDef final_training();

}  // namespace nas::stages
