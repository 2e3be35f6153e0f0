// An ablation's results: every finished run's evaluations (its search store) and test accuracy (its
// result.json), the metrics at each checkpoint, and the statistics across seeds.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <optional>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "ablation/plan.hpp"
#include "nas/files.hpp"
#include "nas/store.hpp"

namespace fs = std::filesystem;

namespace nas::ablation {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

struct Point {
  std::int64_t index = 0;
  double wall_time = 0;  ///< seconds from the search's first proposal to this result
  std::optional<double> reward, final_score;
};

struct RunResult {
  std::vector<Point> evaluations;  ///< finished ones, in proposal order
  std::optional<double> test_accuracy;
};

RunResult read_run(const fs::path& dir) {
  RunResult result;
  if (fs::exists(dir / "search.sqlite")) {
    const SearchStore store(dir / "search.sqlite", SearchStore::Access::read);
    const std::vector<StoredEvaluation> rows = store.evaluations();
    double start = std::numeric_limits<double>::infinity();
    for (const StoredEvaluation& e : rows) start = std::min(start, e.proposed_at);
    // A reward that is not a number (a diverged child) ranks nowhere: it counts as none.
    auto finite = [](const std::optional<double>& v) { return v && std::isfinite(*v) ? v : std::nullopt; };
    for (const StoredEvaluation& e : rows) {
      if (e.status == EvaluationStatus::pending || e.status == EvaluationStatus::cancelled) continue;
      result.evaluations.push_back({e.index, e.finished_at - start, finite(e.reward), finite(e.final_score)});
    }
  }
  if (std::ifstream in(dir / "result.json"); in) {
    const nlohmann::json json = nlohmann::json::parse(in, nullptr, false);
    if (json.is_object() && json.contains("test_top1") && json["test_top1"].is_number())
      result.test_accuracy = json["test_top1"].get<double>();  // absent when the training diverged
  }
  return result;
}

// The best reward among the evaluations a checkpoint covers and the final score of its architecture
// (the first evaluated of equal rewards, as the search's own ranking).
struct Best {
  std::optional<double> reward, final_score;
  void see(const Point& p) {
    if (p.reward && (!reward || *p.reward > *reward)) *this = {p.reward, p.final_score};
  }
};

Best best_at(const RunResult& run, const Checkpoint& checkpoint) {
  Best best;
  std::int64_t counted = 0;
  for (const Point& p : run.evaluations) {
    if (checkpoint.kind == Checkpoint::Kind::evaluations && ++counted > checkpoint.value) break;
    if (checkpoint.kind == Checkpoint::Kind::seconds && p.wall_time > checkpoint.value) continue;
    best.see(p);
  }
  return best;
}

std::optional<double> metric_at(const RunResult& run, const std::string& metric, const Checkpoint& checkpoint) {
  if (metric == "test_accuracy") return checkpoint.kind == Checkpoint::Kind::end ? run.test_accuracy : std::nullopt;
  const Best best = best_at(run, checkpoint);
  return metric == "best_reward" ? best.reward : best.final_score;
}

std::string number(double x) {
  if (std::isnan(x)) return "-";
  return std::abs(x) < 10 ? fmt::format("{:.4f}", x) : fmt::format("{:.2f}", x);
}

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

std::string optional_text(const std::optional<double>& v) { return v ? fmt::format("{}", *v) : ""; }

// One table cell: a metric at a checkpoint, for one grid point, every arm over the seeds.
struct Cell {
  std::vector<std::pair<std::string, std::string>> grid;
  std::string metric;
  Checkpoint checkpoint;
  std::vector<std::vector<std::optional<double>>> values;  ///< [arm][seed]
  std::vector<stats::Summary> summaries;                   ///< [arm]; n = 0 when it has no value
  std::vector<double> mean_rank;                           ///< [arm]: 1 is the best
  struct Comparison {
    std::size_t arm = 0;
    stats::TestResult test;
    double p_holm = 1, a12 = kNaN;
    bool significant = false;
  };
  std::vector<Comparison> comparisons;
};

void compute(Cell& cell, std::size_t baseline, const Settings& settings) {
  const std::size_t arms = cell.values.size(), seeds = arms ? cell.values[0].size() : 0;
  auto present = [](const std::vector<std::optional<double>>& v) {
    std::vector<double> out;
    for (const auto& x : v)
      if (x) out.push_back(*x);
    return out;
  };
  for (std::size_t a = 0; a < arms; ++a) {
    const std::vector<double> v = present(cell.values[a]);
    cell.summaries.push_back(v.empty() ? stats::Summary{} : stats::summarize(v, settings.bootstrap));
  }
  // Mean rank over the seeds where every arm has a value; ranked within each seed, best first.
  cell.mean_rank.assign(arms, 0);
  std::size_t complete = 0;
  for (std::size_t s = 0; s < seeds; ++s) {
    std::vector<double> negated;
    for (std::size_t a = 0; a < arms; ++a)
      if (cell.values[a][s]) negated.push_back(-*cell.values[a][s]);
    if (negated.size() != arms) continue;
    const std::vector<double> ranks = stats::average_ranks(negated);
    for (std::size_t a = 0; a < arms; ++a) cell.mean_rank[a] += ranks[a];
    ++complete;
  }
  for (double& r : cell.mean_rank) r = complete ? r / static_cast<double>(complete) : kNaN;

  std::vector<double> p;
  for (std::size_t a = 0; a < arms; ++a) {
    if (a == baseline) continue;
    Cell::Comparison c{a, {}, 1, kNaN, false};
    if (settings.paired) {
      std::vector<double> x, y;
      for (std::size_t s = 0; s < seeds; ++s)
        if (cell.values[a][s] && cell.values[baseline][s]) {
          x.push_back(*cell.values[a][s]);
          y.push_back(*cell.values[baseline][s]);
        }
      if (x.empty()) continue;
      c.test = stats::wilcoxon_signed_rank(x, y);
      c.a12 = stats::vargha_delaney_a12(x, y);
    } else {
      const std::vector<double> x = present(cell.values[a]), y = present(cell.values[baseline]);
      if (x.empty() || y.empty()) continue;
      c.test = stats::mann_whitney_u(x, y);
      c.a12 = stats::vargha_delaney_a12(x, y);
    }
    p.push_back(c.test.p);
    cell.comparisons.push_back(c);
  }
  const std::vector<double> adjusted = stats::holm(p);
  for (std::size_t i = 0; i < cell.comparisons.size(); ++i) {
    cell.comparisons[i].p_holm = adjusted[i];
    cell.comparisons[i].significant = adjusted[i] < settings.alpha;
  }
}

const Cell::Comparison* comparison_of(const Cell& cell, std::size_t arm) {
  for (const Cell::Comparison& c : cell.comparisons)
    if (c.arm == arm) return &c;
  return nullptr;
}

std::string grid_label(const std::vector<std::pair<std::string, std::string>>& grid) {
  std::vector<std::string> parts;
  for (const auto& [key, value] : grid) parts.push_back(fmt::format("{}={}", key, value));
  return fmt::format("{}", fmt::join(parts, ", "));
}

// The tables a paper would print (one per grid point and metric, a column per checkpoint) and,
// unless `summary_only`, below each the details of every cell.
std::string markdown(const Plan& plan, const std::vector<Cell>& cells, std::size_t finished, std::size_t baseline,
                     std::size_t seeds, bool summary_only) {
  const Settings& s = plan.settings;
  std::string md = fmt::format("# Ablation `{}`\n\n", plan.name);
  md += fmt::format("{} of {} runs finished; {} seeds per arm{}. Cells: mean ± std over the seeds; ▲/▼: better/worse "
                    "than the baseline `{}` ({}, two-sided, Holm-corrected over the arms of each column, alpha {}).\n",
                    finished, plan.runs.size(), seeds, plan.axes.empty() ? "" : " and grid point", plan.arms[baseline],
                    s.paired ? "Wilcoxon signed-rank test, paired by seed" : "Mann-Whitney U test", s.alpha);
  if (!summary_only)
    md += fmt::format("Below each table: median, interquartile mean, {:g}% bootstrap interval of the mean ({} "
                      "resamples), mean rank per seed (1 = best), p (Holm-adjusted) and the Vargha-Delaney A12 "
                      "against the baseline.\n", 100 * s.bootstrap.confidence, s.bootstrap.resamples);
  // Group the cells by (grid point, metric): one table each, a column per checkpoint.
  for (std::size_t begin = 0; begin < cells.size();) {
    std::size_t end = begin;
    while (end < cells.size() && cells[end].grid == cells[begin].grid && cells[end].metric == cells[begin].metric) ++end;
    const Cell& first = cells[begin];
    md += fmt::format("\n## {}{}\n\n| arm |", first.metric, first.grid.empty() ? "" : " (" + grid_label(first.grid) + ")");
    for (std::size_t c = begin; c < end; ++c) md += fmt::format(" {} |", cells[c].checkpoint.label());
    md += "\n|---|";
    for (std::size_t c = begin; c < end; ++c) md += "---|";
    md += "\n";
    for (std::size_t a = 0; a < plan.arms.size(); ++a) {
      md += fmt::format("| {}{} |", plan.arms[a], a == baseline ? " (baseline)" : "");
      for (std::size_t c = begin; c < end; ++c) {
        const stats::Summary& sum = cells[c].summaries[a];
        if (sum.n == 0) {
          md += " - |";
          continue;
        }
        const Cell::Comparison* cmp = comparison_of(cells[c], a);
        const std::string mark = cmp && cmp->significant && cmp->test.direction != 0
                                     ? (cmp->test.direction > 0 ? " ▲" : " ▼") : "";
        md += fmt::format(" {} ± {}{} |", number(sum.mean), number(sum.std), mark);
      }
      md += "\n";
    }
    if (summary_only) {
      begin = end;
      continue;
    }
    md += "\n| checkpoint | arm | n | median | IQM | interval | rank | p (Holm) | A12 |\n|---|---|---|---|---|---|---|---|---|\n";
    for (std::size_t c = begin; c < end; ++c)
      for (std::size_t a = 0; a < plan.arms.size(); ++a) {
        const stats::Summary& sum = cells[c].summaries[a];
        const Cell::Comparison* cmp = comparison_of(cells[c], a);
        md += fmt::format("| {} | {} | {} | {} | {} | [{}, {}] | {} | {} | {} |\n", cells[c].checkpoint.label(),
                          plan.arms[a], sum.n, number(sum.median), number(sum.iqm), number(sum.ci_low),
                          number(sum.ci_high), std::isnan(cells[c].mean_rank[a]) ? "-" : fmt::format("{:.2f}", cells[c].mean_rank[a]),
                          cmp ? fmt::format("{:.3g} ({:.3g})", cmp->test.p, cmp->p_holm) : "-",
                          cmp ? fmt::format("{:.2f} {}", cmp->a12, stats::a12_magnitude(cmp->a12)) : "-");
      }
    begin = end;
  }
  return md;
}

}  // namespace

std::string analyze(const Plan& plan, const fs::path& dir) {
  const Settings& s = plan.settings;
  std::vector<RunResult> results(plan.runs.size());
  std::vector<bool> done(plan.runs.size(), false);
  std::size_t finished_count = 0;
  for (std::size_t i = 0; i < plan.runs.size(); ++i)
    if (finished(dir, plan.runs[i])) {
      results[i] = read_run(run_dir(dir, plan.runs[i]));
      done[i] = true;
      ++finished_count;
    }

  // ablation.csv: one row per evaluation (one per run for runs without a search).
  std::string csv = "run,arm";
  for (const std::string& axis : plan.axes) csv += "," + csv_field(axis);
  csv += ",seed,evaluation,wall_time,reward,best_so_far,final_score,test_accuracy\n";
  for (std::size_t i = 0; i < plan.runs.size(); ++i) {
    if (!done[i]) continue;
    const Run& run = plan.runs[i];
    std::string prefix = csv_field(run.id) + "," + csv_field(run.arm);
    for (const auto& [key, value] : run.grid) prefix += "," + csv_field(value);
    prefix += fmt::format(",{}", run.seed);
    const std::string test = optional_text(results[i].test_accuracy);
    Best best;
    for (const Point& p : results[i].evaluations) {
      best.see(p);
      csv += fmt::format("{},{},{:.3f},{},{},{},{}\n", prefix, p.index, p.wall_time, optional_text(p.reward),
                         optional_text(best.reward), optional_text(best.final_score), test);
    }
    if (results[i].evaluations.empty()) csv += fmt::format("{},,,,,,{}\n", prefix, test);
  }

  // The cells: grid point x metric x checkpoint, in the plan's order.
  std::vector<std::int64_t> seeds;
  std::vector<std::vector<std::pair<std::string, std::string>>> points;
  for (const Run& run : plan.runs) {
    if (std::find(seeds.begin(), seeds.end(), run.seed) == seeds.end()) seeds.push_back(run.seed);
    if (std::find(points.begin(), points.end(), run.grid) == points.end()) points.push_back(run.grid);
  }
  const std::size_t baseline = static_cast<std::size_t>(
      std::find(plan.arms.begin(), plan.arms.end(), s.baseline) - plan.arms.begin());
  std::vector<Cell> cells;
  for (const auto& point : points)
    for (const std::string& metric : s.metrics)
      for (const Checkpoint& checkpoint : metric == "test_accuracy" ? std::vector<Checkpoint>{{}} : s.checkpoints) {
        Cell cell{point, metric, checkpoint, {}, {}, {}, {}};
        cell.values.assign(plan.arms.size(), std::vector<std::optional<double>>(seeds.size()));
        for (std::size_t i = 0; i < plan.runs.size(); ++i) {
          const Run& run = plan.runs[i];
          if (!done[i] || run.grid != point) continue;
          const auto a = static_cast<std::size_t>(std::find(plan.arms.begin(), plan.arms.end(), run.arm) - plan.arms.begin());
          const auto k = static_cast<std::size_t>(std::find(seeds.begin(), seeds.end(), run.seed) - seeds.begin());
          cell.values[a][k] = metric_at(results[i], metric, checkpoint);
        }
        const bool any = std::any_of(cell.values.begin(), cell.values.end(), [](const auto& v) {
          return std::any_of(v.begin(), v.end(), [](const auto& x) { return x.has_value(); });
        });
        if (!any) continue;  // e.g. final_score of an evaluator without final scores
        compute(cell, baseline, s);
        cells.push_back(std::move(cell));
      }

  nlohmann::ordered_json json{{"name", plan.name}, {"folder", fs::absolute(dir).string()},
                              {"arms", plan.arms}, {"axes", plan.axes}, {"seeds", seeds},
                              {"settings", settings_json(s)},
                              {"runs", nlohmann::ordered_json::array()}, {"results", nlohmann::ordered_json::array()}};
  for (std::size_t i = 0; i < plan.runs.size(); ++i)
    json["runs"].push_back({{"id", plan.runs[i].id}, {"arm", plan.runs[i].arm}, {"seed", plan.runs[i].seed},
                            {"finished", static_cast<bool>(done[i])}});
  for (const Cell& cell : cells) {
    nlohmann::ordered_json grid = nlohmann::ordered_json::object();
    for (const auto& [key, value] : cell.grid) grid[key] = value;
    nlohmann::ordered_json arms = nlohmann::ordered_json::array(), comparisons = nlohmann::ordered_json::array();
    for (std::size_t a = 0; a < plan.arms.size(); ++a) {
      const stats::Summary& sum = cell.summaries[a];
      nlohmann::ordered_json values = nlohmann::ordered_json::array();
      for (const auto& v : cell.values[a]) values.push_back(v ? nlohmann::ordered_json(*v) : nlohmann::ordered_json());
      arms.push_back({{"arm", plan.arms[a]}, {"n", sum.n}, {"mean", sum.mean}, {"std", sum.std}, {"median", sum.median},
                      {"iqm", sum.iqm}, {"ci", {sum.ci_low, sum.ci_high}}, {"mean_rank", cell.mean_rank[a]},
                      {"values", values}});
    }
    for (const Cell::Comparison& c : cell.comparisons)
      comparisons.push_back({{"arm", plan.arms[c.arm]}, {"against", s.baseline}, {"test", c.test.test},
                             {"exact", c.test.exact}, {"statistic", c.test.statistic}, {"p", c.test.p},
                             {"direction", c.test.direction},
                             {"p_holm", c.p_holm}, {"significant", c.significant}, {"a12", c.a12},
                             {"magnitude", stats::a12_magnitude(c.a12)}});
    json["results"].push_back({{"grid", grid}, {"metric", cell.metric}, {"checkpoint", cell.checkpoint.label()},
                               {"arms", arms}, {"comparisons", comparisons}});
  }

  const std::string md = markdown(plan, cells, finished_count, baseline, seeds.size(), false);
  for (const auto& [name, text] : {std::pair{"ablation.csv", csv}, std::pair{"ablation.json", json.dump(2) + "\n"},
                                   std::pair{"ablation.md", md}})
    write_file(dir / name, text);
  return markdown(plan, cells, finished_count, baseline, seeds.size(), true);
}

}  // namespace nas::ablation
