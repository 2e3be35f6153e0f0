// The built-in stages, one file each (internal to the core).
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "nas/stage.hpp"
#include "nas/store.hpp"

namespace nas {
class Space;
}

namespace nas::stages {

StageDef dataset_stats();
StageDef search();
StageDef select();
StageDef retrain();

/// Writes dir/<rank>.genotype for each row (best first, a comment line giving rank, reward, evaluation
/// and hash) and returns a table for the log and the list as JSON.
std::pair<std::string, nlohmann::ordered_json> write_ranked(const std::vector<StoredEvaluation>& ranked,
                                                            const Space& space, const std::filesystem::path& dir,
                                                            const std::string& source);
StageDef train();

}  // namespace nas::stages
