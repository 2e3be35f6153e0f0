// The report of an ablation: the comparison table (intervals, significance after Holm's correction),
// the best-so-far curves of every arm with confidence bands, the per-seed scores of every arm, and a
// link to each run's own report. It reads what `nas-host ablate` wrote: plan.json, ablation.json and
// ablation.csv.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "ablation/plan.hpp"
#include "ablation/statistics.hpp"
#include "nas/error.hpp"
#include "report/sections.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace nas::report {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// ablation.csv as rows of named fields (quoted fields as analysis.cpp writes them).
std::vector<std::map<std::string, std::string>> read_csv(const fs::path& file) {
  std::ifstream in(file);
  std::vector<std::vector<std::string>> records;
  std::vector<std::string> record(1);
  bool quoted = false;
  for (char c; in.get(c);) {
    if (quoted) {
      if (c == '"' && in.peek() == '"') record.back() += static_cast<char>(in.get());
      else if (c == '"') quoted = false;
      else record.back() += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      record.emplace_back();
    } else if (c == '\n') {
      records.push_back(std::move(record));
      record.assign(1, "");
    } else {
      record.back() += c;
    }
  }
  std::vector<std::map<std::string, std::string>> rows;
  for (std::size_t r = 1; r < records.size(); ++r) {
    std::map<std::string, std::string> row;
    for (std::size_t c = 0; c < records[0].size() && c < records[r].size(); ++c) row[records[0][c]] = records[r][c];
    rows.push_back(std::move(row));
  }
  return rows;
}

// A field of a row; empty when the file has no such column (an older ablation.csv).
const std::string& field(const std::map<std::string, std::string>& row, const std::string& name) {
  static const std::string none;
  auto it = row.find(name);
  return it == row.end() ? none : it->second;
}

double parse_number(const std::string& text) {
  if (text.empty()) return kNaN;
  try {
    return std::stod(text);
  } catch (const std::exception&) {
    return kNaN;
  }
}

std::string grid_label(const json& grid) {
  std::string label;
  for (const auto& [key, value] : grid.items()) label += (label.empty() ? "" : ", ") + key + "=" + value.get<std::string>();
  return label;
}

// One run's curve: best so far after each finished evaluation, and when it came.
struct Curve {
  std::vector<double> wall_time, best;
};

// Mean and interval over the seeds at each x, for the arms of one grid point; x where fewer than two
// seeds have a value are left out of the band (one seed has no interval).
void add_mean_and_band(Chart& chart, const std::string& arm, std::size_t color, const std::vector<double>& xs,
                       const std::vector<std::vector<double>>& values_at, const stats::BootstrapOptions& bootstrap) {
  Series mean{arm, Series::Style::line, {}, {}, {}, {}, "circle", color};
  Series band{fmt::format("{} {:g}% interval", arm, 100 * bootstrap.confidence), Series::Style::band, {}, {}, {}, {},
              "circle", color};
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const std::vector<double>& v = values_at[i];
    if (v.empty()) continue;
    if (v.size() == 1) {
      mean.add(xs[i], v[0], fmt::format("{}: {:.4f} (1 seed)", arm, v[0]));
      continue;
    }
    const stats::Summary s = stats::summarize(v, bootstrap);
    mean.add(xs[i], s.mean, fmt::format("{}: mean {:.4f} [{:.4f}, {:.4f}] over {} seeds", arm, s.mean, s.ci_low,
                                        s.ci_high, v.size()));
    band.x.push_back(xs[i]);
    band.y.push_back(s.ci_low);
    band.upper.push_back(s.ci_high);
  }
  chart.series.push_back(std::move(band));
  chart.series.push_back(std::move(mean));
}

void summary(Page& page, const fs::path& dir, const ablation::Plan& plan, const std::optional<json>& results) {
  page.section("Summary", "summary");
  std::size_t done = 0;
  for (const ablation::Run& run : plan.runs) done += ablation::finished(dir, run) ? 1 : 0;
  const ablation::Settings& s = plan.settings;
  std::vector<std::string> arms;
  for (const std::string& arm : plan.arms) arms.push_back(escape(arm) + (arm == s.baseline ? " (baseline)" : ""));
  Table t;
  auto row = [&](const std::string& key, const std::string& html) { t.rows.push_back({"<b>" + key + "</b>", html}); };
  row("folder", "<code>" + escape(fs::absolute(dir).string()) + "</code>");
  row("runs", fmt::format("{} of {} finished{}", done, plan.runs.size(),
                          done < plan.runs.size() ? fmt::format("; <code>nas-host ablate --resume {}</code> finishes the rest",
                                                                escape(dir.string()))
                                                  : ""));
  row("arms", fmt::format("{}", fmt::join(arms, ", ")));
  if (!plan.axes.empty()) row("grid", escape(fmt::format("{}", fmt::join(plan.axes, ", "))));
  row("seeds", fmt::format("{} per arm{}", plan.seeds.size(), plan.axes.empty() ? "" : " and grid point"));
  row("tests", escape(fmt::format("{} against the baseline, two-sided, Holm-corrected over each column, alpha {}; "
                                  "{:g}% percentile bootstrap intervals of the mean",
                                  s.paired ? "Wilcoxon signed-rank, paired by seed" : "Mann-Whitney U", s.alpha,
                                  100 * s.bootstrap.confidence)));
  if (!results) row("statistics", "not yet: <code>ablation.json</code> is written when the runs are over");
  page.table(t);
}

// One table per grid point and metric: an arm per row, a checkpoint per column.
void comparison(Page& page, const json& results, const ablation::Plan& plan) {
  page.section("Comparison", "comparison");
  page.paragraph(fmt::format("Mean ± standard deviation over the seeds, the {:g}% bootstrap interval of the mean, "
                             "the Holm-adjusted p-value against the baseline <code>{}</code> and the Vargha-Delaney "
                             "A12 (the probability that the arm beats the baseline). <span class=\"better\">▲</span> / "
                             "<span class=\"worse\">▼</span>: significantly better / worse at alpha {}.",
                             100 * plan.settings.bootstrap.confidence, escape(plan.settings.baseline), plan.settings.alpha));
  const json& cells = results.at("results");
  for (std::size_t begin = 0; begin < cells.size();) {
    std::size_t end = begin;
    while (end < cells.size() && cells[end].at("grid") == cells[begin].at("grid") && cells[end].at("metric") == cells[begin].at("metric"))
      ++end;
    const std::string grid = grid_label(cells[begin].at("grid"));
    page.html(fmt::format("<h3><code>{}</code>{}</h3>\n", escape(cells[begin].at("metric").get<std::string>()),
                          grid.empty() ? "" : " (" + escape(grid) + ")"));
    Table t{{"arm"}, {}, "comparison-" + std::to_string(begin)};
    for (std::size_t c = begin; c < end; ++c) t.header.push_back(escape(cells[c].at("checkpoint").get<std::string>()));
    for (std::size_t a = 0; a < plan.arms.size(); ++a) {
      std::vector<std::string> row{escape(plan.arms[a]) + (plan.arms[a] == plan.settings.baseline ? " (baseline)" : "")};
      for (std::size_t c = begin; c < end; ++c) {
        const json& arm = cells[c].at("arms").at(a);
        if (arm.at("n").get<std::size_t>() == 0) {
          row.push_back("-");
          continue;
        }
        std::string mark, detail;
        for (const json& cmp : cells[c].at("comparisons"))
          if (cmp.at("arm") == plan.arms[a]) {
            const int direction = cmp.value("direction", 0);
            if (cmp.at("significant").get<bool>() && direction != 0)
              mark = direction > 0 ? " <span class=\"better\">▲</span>" : " <span class=\"worse\">▼</span>";
            detail = fmt::format(" · p {:.3g} · A12 {:.2f} {}", cmp.at("p_holm").get<double>(), cmp.at("a12").get<double>(),
                                 cmp.at("magnitude").get<std::string>());
          }
        auto value = [](const json& v) { return v.is_number() ? v.get<double>() : kNaN; };
        row.push_back(fmt::format("<td class=\"num\">{} ± {}{}<br><small>[{}, {}]{}</small></td>", number(value(arm.at("mean"))),
                                  number(value(arm.at("std"))), mark, number(value(arm.at("ci").at(0))), number(value(arm.at("ci").at(1))),
                                  escape(detail)));
      }
      t.rows.push_back(std::move(row));
    }
    page.table(t);
    begin = end;
  }
}

// Best so far against evaluations and wall time, per grid point: each arm's mean over its seeds
// with the bootstrap interval of the mean.
void curves(Page& page, const fs::path& dir, const ablation::Plan& plan) {
  const auto rows = read_csv(dir / "ablation.csv");
  if (rows.empty()) return;
  // grid label -> arm -> run -> curve
  std::map<std::string, std::map<std::string, std::map<std::string, Curve>>> groups;
  for (const auto& row : rows) {
    if (field(row, "evaluation").empty()) continue;  // a run without a search
    const double best = parse_number(field(row, "best_so_far"));  // NaN before the run's first reward
    std::vector<std::string> grid;
    for (const std::string& axis : plan.axes) grid.push_back(axis + "=" + field(row, axis));
    Curve& c = groups[fmt::format("{}", fmt::join(grid, ", "))][field(row, "arm")][field(row, "run")];
    c.wall_time.push_back(parse_number(field(row, "wall_time")));
    c.best.push_back(best);
  }
  if (groups.empty()) return;
  page.section("Best so far", "curves");
  stats::BootstrapOptions bootstrap = plan.settings.bootstrap;
  bootstrap.resamples = std::min<std::int64_t>(bootstrap.resamples, 2000);  // per point of every curve
  std::size_t g = 0;
  for (const auto& [grid, arms] : groups) {
    const std::string suffix = grid.empty() ? "" : " (" + grid + ")";
    Chart by_count{fmt::format("best-by-evaluations-{}", g), "Best reward so far against evaluations" + suffix,
                   "evaluations", "best reward so far", {}, {}, true};
    Chart by_time{fmt::format("best-by-time-{}", g), "Best reward so far against wall time" + suffix,
                  "seconds since the search began", "best reward so far", {}, {}};
    double longest = 0;
    std::size_t most = 0;
    for (const auto& [arm, runs] : arms)
      for (const auto& [id, c] : runs) {
        for (double t : c.wall_time)
          if (std::isfinite(t)) longest = std::max(longest, t);
        most = std::max(most, c.best.size());
      }
    for (std::size_t a = 0; a < plan.arms.size(); ++a) {
      auto it = arms.find(plan.arms[a]);
      if (it == arms.end()) continue;
      std::vector<double> counts, times;
      std::vector<std::vector<double>> at_count(most), at_time;
      for (std::size_t k = 0; k < most; ++k) counts.push_back(static_cast<double>(k + 1));
      // At the k-th evaluation, the runs that have a reward by then; a run that stopped early counts
      // with what it reached (as at the tables' checkpoints).
      for (const auto& [id, c] : it->second)
        for (std::size_t k = 0; k < most; ++k)
          if (const double v = c.best[std::min(k, c.best.size() - 1)]; !std::isnan(v)) at_count[k].push_back(v);
      // 60 instants: each run's best among the results that had come by then; an instant before every
      // run of the arm has a result is left out (a mean over the fastest seeds only would mislead).
      constexpr int kInstants = 60;
      for (int i = 0; i <= kInstants; ++i) {
        const double t = longest * i / kInstants;
        std::vector<double> values;
        for (const auto& [id, c] : it->second) {
          double best = kNaN;
          for (std::size_t k = 0; k < c.best.size(); ++k)
            if (c.wall_time[k] <= t && !std::isnan(c.best[k])) best = std::isnan(best) ? c.best[k] : std::max(best, c.best[k]);
          if (!std::isnan(best)) values.push_back(best);
        }
        if (values.size() < it->second.size()) continue;
        times.push_back(t);
        at_time.push_back(std::move(values));
      }
      add_mean_and_band(by_count, plan.arms[a], a, counts, at_count, bootstrap);
      add_mean_and_band(by_time, plan.arms[a], a, times, at_time, bootstrap);
    }
    const std::string band = fmt::format("the band is the {:g}% bootstrap interval of the mean", 100 * bootstrap.confidence);
    page.chart(std::move(by_count), "Each arm's mean over its seeds of the best reward among the first n evaluations; " + band + ".");
    page.chart(std::move(by_time), "The same against the seconds since each search began (depends on the machine and "
                                   "the jobs run at once); " + band + ".");
    ++g;
  }
}

// Every seed's value per arm at the last checkpoint of each metric (a strip plot), with the mean.
void scores(Page& page, const json& results, const ablation::Plan& plan) {
  const json& cells = results.at("results");
  const json& seed_numbers = results.at("seeds");  // the order of every arm's values
  bool first = true;
  for (std::size_t i = 0; i < cells.size(); ++i) {
    const bool last = i + 1 == cells.size() || cells[i + 1].at("grid") != cells[i].at("grid") || cells[i + 1].at("metric") != cells[i].at("metric");
    if (!last) continue;
    if (first) page.section("Scores per seed", "scores");
    first = false;
    const json& cell = cells[i];
    const std::string metric = cell.at("metric").get<std::string>(), grid = grid_label(cell.at("grid"));
    Chart chart{fmt::format("scores-{}", i), fmt::format("{} at {}{}", metric, cell.at("checkpoint").get<std::string>(),
                                                         grid.empty() ? "" : " (" + grid + ")"),
                "arm", metric, plan.arms, {}};
    Series means{"mean", Series::Style::points, {}, {}, {}, {}, "dash", 7};
    for (std::size_t a = 0; a < plan.arms.size(); ++a) {
      const json& arm = cell.at("arms").at(a);
      Series seeds{plan.arms[a], Series::Style::points, {}, {}, {}, {}, "circle", a};
      const json& values = arm.at("values");
      // Spread across the arm's slot, by seed, so that equal values stay visible.
      const double spread = std::min(0.08, 0.6 / static_cast<double>(std::max<std::size_t>(1, values.size())));
      for (std::size_t k = 0; k < values.size(); ++k) {
        if (!values[k].is_number()) continue;
        const double jitter = (static_cast<double>(k) - static_cast<double>(values.size() - 1) / 2) * spread;
        seeds.add(static_cast<double>(a) + jitter, values[k].get<double>(),
                  fmt::format("{} seed {}: {:.4f}", plan.arms[a], seed_numbers.at(k).dump(), values[k].get<double>()));
      }
      if (arm.at("n").get<std::size_t>() > 0 && arm.at("mean").is_number())
        means.add(static_cast<double>(a), arm.at("mean").get<double>(),
                  fmt::format("{}: mean {:.4f}", plan.arms[a], arm.at("mean").get<double>()));
      chart.series.push_back(std::move(seeds));
    }
    chart.series.push_back(std::move(means));
    page.chart(std::move(chart), fmt::format("Every seed's <code>{}</code> per arm (spread sideways to stay visible) "
                                             "and the arm's mean.", escape(metric)));
  }
}

// A relative path as a URL path: every byte but the unreserved ones and '/' percent-encoded.
std::string url_path(const fs::path& path) {
  std::string out;
  for (unsigned char c : path.generic_string())
    out += std::isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.' || c == '~' ? std::string(1, static_cast<char>(c))
                                                                                       : fmt::format("%{:02X}", c);
  return out;
}

// `output`: where the page goes; its links to the runs' reports are relative to it.
void runs(Page& page, const fs::path& dir, const fs::path& output, const ablation::Plan& plan) {
  page.section("Runs", "runs");
  std::map<std::string, std::pair<double, double>> last;  // run -> best reward, test accuracy at its end
  for (const auto& row : read_csv(dir / "ablation.csv"))
    last[field(row, "run")] = {parse_number(field(row, "best_so_far")), parse_number(field(row, "test_accuracy"))};
  Table t{{"run", "arm", "seed", "status", "best reward", "test accuracy"}, {}, "runs"};
  for (const ablation::Run& run : plan.runs) {
    const fs::path report = ablation::run_dir(dir, run) / "report.html";
    const std::string name =
        fs::exists(report)
            ? fmt::format("<a href=\"{}\">{}</a>",
                          escape(url_path(fs::relative(fs::absolute(report), fs::absolute(output).parent_path()))),
                          escape(run.id))
            : escape(run.id);
    const auto it = last.find(run.id);
    t.rows.push_back({name, escape(run.arm), std::to_string(run.seed),
                      ablation::finished(dir, run) ? "finished" : "<span class=\"note\">not finished</span>",
                      "<td class=\"num\">" + number(it == last.end() ? kNaN : it->second.first) + "</td>",
                      "<td class=\"num\">" + number(it == last.end() ? kNaN : it->second.second) + "</td>"});
  }
  page.table(t);
}

}  // namespace

Page ablation_page(const fs::path& dir, const fs::path& output) {
  const ablation::Plan plan = ablation::read_plan(dir);
  Page page(fmt::format("Ablation {} ({})", plan.name, dir.filename().string()));
  const std::optional<json> results = read_json(dir / "ablation.json");
  try {
    summary(page, dir, plan, results);
    if (results) comparison(page, *results, plan);
    curves(page, dir, plan);
    if (results) scores(page, *results, plan);
    runs(page, dir, output, plan);
  } catch (const json::exception& e) {
    throw Error(fmt::format("report: '{}' is not what this nas-host ablate writes ({}); 'nas-host ablate --resume {}' "
                            "writes it again", (dir / "ablation.json").string(), e.what(), dir.string()));
  }
  return page;
}

}  // namespace nas::report
