#include "nas/report.hpp"

#include <fmt/format.h>

#include "nas/error.hpp"
#include "nas/files.hpp"
#include "nas/log.hpp"
#include "report/sections.hpp"

namespace fs = std::filesystem;

namespace nas {

fs::path write_report(const fs::path& dir, const Registry* registry, Logger& log, const ReportOptions& options) {
  const bool ablation = fs::exists(dir / "plan.json");
  if (!ablation && !fs::exists(dir / "config.yaml"))
    throw UsageError(fmt::format("report: '{}' is neither a run folder (it has no config.yaml) nor an ablation folder "
                                 "(no plan.json)", dir.string()));
  const fs::path file = options.output.empty() ? dir / "report.html" : options.output;
  const report::Page page = ablation ? report::ablation_page(dir, file) : report::run_page(dir, registry, log);
  write_file(file, page.render());
  if (!options.figures.empty()) {
    std::error_code ec;
    fs::create_directories(options.figures, ec);
    if (ec) throw Error(fmt::format("report: cannot create '{}': {}", options.figures.string(), ec.message()));
    for (const report::Chart& chart : page.charts()) report::write_figure(chart, options.figures);
    log.info("report: {} figures (SVG, PDF and the gnuplot scripts) in {}", page.charts().size(), options.figures.string());
  }
  return file;
}

std::optional<fs::path> write_report_or_warn(const fs::path& dir, const Registry* registry, Logger& log) {
  try {
    return write_report(dir, registry, log);
  } catch (const std::exception& e) {
    log.warn("report not written: {}; 'nas-host report {}' tries again", e.what(), dir.string());
    return std::nullopt;
  }
}

}  // namespace nas
