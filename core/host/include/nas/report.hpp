// `nas-host report`: one self-contained HTML file for a run or an ablation folder (docs/report.md).
#pragma once

#include <filesystem>
#include <optional>

#include "nas/api.hpp"

namespace nas {

class Logger;
class Registry;

struct ReportOptions {
  std::filesystem::path output;   ///< the HTML file; empty: DIR/report.html
  std::filesystem::path figures;  ///< also every chart as gnuplot data, script, SVG and PDF there; empty: none
};

/// Writes the report of `dir`, a run folder (it has config.yaml) or an ablation folder (plan.json),
/// finished, still running (the store is read without blocking the search) or killed; returns the
/// file written. `registry` draws the run's cells with its space plugins (null: genotypes as text).
/// Throws UsageError when `dir` is neither, Error when a file cannot be read or written.
NAS_API std::filesystem::path write_report(const std::filesystem::path& dir, const Registry* registry, Logger& log,
                                           const ReportOptions& options = {});

/// write_report at the end of `nas-host run` and `ablate`: a failure is a warning that says how to try
/// again (the results are all written by then and never depend on the report); empty then.
NAS_API std::optional<std::filesystem::path> write_report_or_warn(const std::filesystem::path& dir,
                                                                  const Registry* registry, Logger& log);

}  // namespace nas
