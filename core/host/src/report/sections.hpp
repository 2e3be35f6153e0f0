// The two kinds of report page, and what they share.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "report/page.hpp"

namespace nas {
class Logger;
class Registry;
class Space;
}  // namespace nas

namespace nas::report {

/// The page of a run folder (config.yaml, search.sqlite, metrics, results), finished or not.
/// `registry`: to draw cells with the run's space plugins (null: genotypes are shown as text).
Page run_page(const std::filesystem::path& dir, const Registry* registry, Logger& log);

/// The page of an ablation folder (plan.json, ablation.json, ablation.csv), finished or not, to be
/// written to `output` (its links to the runs' reports are relative to it).
Page ablation_page(const std::filesystem::path& dir, const std::filesystem::path& output);

/// An SVG drawing of a genotype's cells (the space's Graphviz graph laid out by `dot`), or a note
/// saying why there is none, then the genotype text.
std::string cell_diagram(const Space& space, const std::string& genotype);

/// A JSON file's contents; empty when it does not exist or is not JSON (a run killed while writing
/// it never leaves half a file, but a run may not have reached it).
std::optional<nlohmann::json> read_json(const std::filesystem::path& file);

}  // namespace nas::report
