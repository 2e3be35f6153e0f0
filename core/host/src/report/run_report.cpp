// The report of one run: what ran where, how the search went (every evaluation, the best so far,
// the controller's own signals), the best cells drawn, and the training curves and results of the
// stages that trained.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <set>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "nas/config.hpp"
#include "nas/error.hpp"
#include "nas/log.hpp"
#include "nas/registry.hpp"
#include "nas/space.hpp"
#include "nas/store.hpp"
#include "report/sections.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace nas::report {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::vector<json> read_jsonl(const fs::path& file) {
  std::vector<json> lines;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    json j = json::parse(line, nullptr, false);
    if (j.is_object()) lines.push_back(std::move(j));  // a line cut short by a kill is skipped
  }
  return lines;
}

// A JSON object file's contents; empty when it is missing, damaged or not an object.
std::optional<json> read_object(const fs::path& file) {
  std::optional<json> j = read_json(file);
  return j && j->is_object() ? j : std::nullopt;
}

double number_or_nan(const json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_number() ? j[key].get<double>() : kNaN;
}

std::string cell_text(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return "-";
  return j[key].is_string() ? escape(j[key].get<std::string>()) : escape(j[key].dump());
}

std::string td_number(double x) { return "<td class=\"num\">" + number(x) + "</td>"; }
std::string td_count(double x) { return "<td class=\"num\">" + (std::isnan(x) ? std::string("-") : count(x)) + "</td>"; }

std::string metric_of(const StoredEvaluation& e, const std::string& key) {
  auto it = e.metrics.find(key);
  return it == e.metrics.end() ? std::string("-") : count(it->second);
}

std::string short_hash(const std::string& hash) { return hash.substr(0, 12); }

// The run's spaces, built from its saved config with the plugins at hand (once, on first use).
class RunSpaces {
 public:
  RunSpaces(const fs::path& dir, const Registry* registry, Logger& log)
      : dir_(dir), registry_(registry), context_{.log = log, .registry = registry} {}

  /// The space of `stage`'s section; null, with problem() saying why, when it cannot be built.
  const Space* of(const std::string& stage) {
    if (!registry_) {
      problem_ = "no plugins loaded";
      return nullptr;
    }
    if (auto it = spaces_.find(stage); it != spaces_.end()) return it->second.get();
    std::unique_ptr<Space>& space = spaces_[stage];
    try {
      if (!config_) config_ = resolve(ConfigDocument::load(dir_ / "config.yaml", {}), *registry_);
      for (const StageConfig& s : config_->stages)
        if (s.def->name == stage && s.slots.count("space"))
          if (const PluginChoice* choice = s.one("space"))
            space = registry_->create<Space>(choice->entry->name, choice->params, context_, {});
    } catch (const std::exception& e) {
      problem_ = e.what();
    }
    return space.get();
  }
  const std::string& problem() const { return problem_; }

 private:
  fs::path dir_;
  const Registry* registry_;
  Context context_;
  std::optional<PipelineConfig> config_;
  std::map<std::string, std::unique_ptr<Space>> spaces_;
  std::string problem_;
};

std::string diagram_or_text(RunSpaces& spaces, const std::string& stage, const std::string& genotype) {
  if (const Space* space = spaces.of(stage)) return cell_diagram(*space, genotype);
  return fmt::format("<p class=\"note\">Cells not drawn: {}.</p><pre>{}</pre>", escape(spaces.problem()), escape(genotype));
}

// --- summary ---------------------------------------------------------------------------------------

void summary(Page& page, const fs::path& dir, const YAML::Node& config, const std::optional<SearchStore>& store) {
  page.section("Summary", "summary");
  const std::optional<json> run = read_object(dir / "run.json");
  const std::optional<json> finished = read_object(dir / "finished.json");
  Table t;
  auto row = [&](const std::string& key, const std::string& html) { t.rows.push_back({"<b>" + key + "</b>", html}); };
  row("run folder", "<code>" + escape(fs::absolute(dir).string()) + "</code>");
  if (finished) {
    row("status", "finished at " + cell_text(*finished, "finished_at"));
  } else {
    std::string status = "not finished: still running, or stopped (killed or failed) before the end; <code>nas-host run "
                         "--resume " + escape(dir.string()) + "</code> continues it";
    std::error_code ec;
    if (const auto written = fs::last_write_time(dir / "log.txt", ec); !ec) {
      const auto age = std::chrono::duration_cast<std::chrono::seconds>(fs::file_time_type::clock::now() - written).count();
      status += fmt::format(" (its log was last written {} s ago)", age);
    }
    row("status", status);
  }
  const YAML::Node experiment = config["experiment"];
  if (experiment) {
    row("experiment", escape(experiment["name"].as<std::string>("")));
    row("seed", escape(experiment["seed"].as<std::string>("")));
  }
  std::string stages;
  for (const YAML::Node& stage : config["pipeline"]) {
    const std::string key = stage.as<std::string>();
    std::string seconds;
    if (const double s = finished ? number_or_nan(finished->value("stage_seconds", json::object()), key.c_str()) : kNaN;
        !std::isnan(s))
      seconds = fmt::format(" ({:.1f} s)", s);
    stages += (stages.empty() ? "" : " → ") + escape(key) + seconds;
  }
  row("stages", stages);
  if (run) {
    row("started", cell_text(*run, "started_at"));
    if (const json resumed = run->value("resumed_at", json::array()); resumed.is_array() && !resumed.empty())
      row("resumed", escape(fmt::format("{} time(s), last at {}", resumed.size(), resumed.back().dump())));
    const json m = run->value("machine", json::object());
    row("machine", escape(fmt::format("{}: {}, {} cores, {:.1f} GiB; {} process(es), {} threads each, device {}",
                                      m.value("host", "?"), m.value("cpu", "?"), m.value("cores", 0),
                                      m.value("memory_gib", 0.0), m.value("processes", 1), m.value("threads", 0),
                                      m.value("device", "?"))));
    row("build", escape(m.value("build", "?")));
  }
  if (store) {
    std::map<EvaluationStatus, int> counts;
    for (const StoredEvaluation& e : store->evaluations()) ++counts[e.status];
    std::string search = fmt::format("{} ok, {} failed, {} reused repeats, {} pending, {} cancelled",
                                     counts[EvaluationStatus::ok], counts[EvaluationStatus::failed],
                                     counts[EvaluationStatus::reused], counts[EvaluationStatus::pending],
                                     counts[EvaluationStatus::cancelled]);
    if (const std::optional<json> s = read_object(dir / "search.json"); s && s->is_object())
      search = "stopped: " + cell_text(*s, "stopped") + "; " + search;
    if (const auto seconds = store->meta("seconds"); seconds && std::isfinite(std::strtod(seconds->c_str(), nullptr)))
      search += fmt::format("; {:.1f} s of search", std::strtod(seconds->c_str(), nullptr));
    row("search", escape(search));
  }
  if (const std::optional<json> result = read_object(dir / "result.json"))
    row("final", escape(fmt::format("test top-1 {}, top-5 {}", number(number_or_nan(*result, "test_top1")),
                                    number(number_or_nan(*result, "test_top5")))));
  page.table(t);

  if (run && run->contains("plugins") && run->at("plugins").is_array()) {
    Table plugins{{"slot", "plugin", "version", "file"}, {}, "plugins"};
    for (const json& p : run->at("plugins"))
      plugins.rows.push_back({escape(p.value("slot", "")), "<code>" + escape(p.value("key", "")) + "</code>",
                              escape(p.value("version", "")), "<code>" + escape(p.value("file", "")) + "</code>"});
    page.html("<h3>Plugins</h3>\n");
    page.table(plugins);
  }
}

// --- search ----------------------------------------------------------------------------------------

void search_progress(Page& page, const std::vector<StoredEvaluation>& rows) {
  double start = std::numeric_limits<double>::infinity(), lowest = std::numeric_limits<double>::infinity();
  for (const StoredEvaluation& e : rows) {
    start = std::min(start, e.proposed_at);
    if (e.reward && std::isfinite(*e.reward)) lowest = std::min(lowest, *e.reward);
  }
  if (!std::isfinite(lowest)) lowest = 0;
  double last = start;
  for (const StoredEvaluation& e : rows) last = std::max(last, e.finished_at);
  const auto [unit, scale] = last - start < 120    ? std::pair{"seconds", 1.0}
                             : last - start < 7200 ? std::pair{"minutes", 60.0}
                                                   : std::pair{"hours", 3600.0};
  // Both charts: x is the evaluation's index, or the minutes from the first proposal to its result.
  for (const bool by_time : {false, true}) {
    Chart chart{by_time ? "reward-by-time" : "reward-by-evaluation",
                by_time ? "Reward against wall time" : "Reward of every evaluation",
                by_time ? fmt::format("{} since the search began", unit) : "evaluation (proposal order)", "reward", {}, {},
                !by_time};
    Series ok{"evaluated", Series::Style::points, {}, {}, {}, {}, "circle", 0};
    Series reused{"reused repeat", Series::Style::points, {}, {}, {}, {}, "triangle", 2};
    Series failed{"failed (drawn at the lowest reward)", Series::Style::points, {}, {}, {}, {}, "cross", 3};
    Series best{"best so far", Series::Style::step, {}, {}, {}, {}, "circle", 1};
    std::vector<const StoredEvaluation*> done;
    for (const StoredEvaluation& e : rows)
      if (e.status == EvaluationStatus::ok || e.status == EvaluationStatus::failed || e.status == EvaluationStatus::reused)
        done.push_back(&e);
    if (by_time)
      std::stable_sort(done.begin(), done.end(), [](auto* a, auto* b) { return a->finished_at < b->finished_at; });
    std::optional<double> best_reward;
    for (const StoredEvaluation* e : done) {
      const double x = by_time ? (e->finished_at - start) / scale : static_cast<double>(e->index);
      const bool has_reward = e->reward && std::isfinite(*e->reward);
      if (e->status == EvaluationStatus::failed || !has_reward) {
        failed.add(x, lowest, fmt::format("#{} failed: {}", e->index, e->failure.substr(0, 120)));
      } else if (e->status == EvaluationStatus::reused) {
        reused.add(x, *e->reward, fmt::format("#{}: reward {:.4f}, a repeat of #{}", e->index, *e->reward,
                                              e->reused_from.value_or(-1)));
      } else {
        ok.add(x, *e->reward, fmt::format("#{}: reward {:.4f} ({})", e->index, *e->reward, short_hash(e->hash)));
      }
      if (has_reward && (!best_reward || *e->reward > *best_reward)) best_reward = *e->reward;
      if (best_reward) best.add(x, *best_reward);
    }
    chart.series = {best, ok, reused, failed};
    page.chart(std::move(chart), by_time ? "The same evaluations against the time their results came in (workers "
                                           "finish out of order), with the best reward reached by then."
                                         : "Every finished evaluation's reward by proposal index, and the best "
                                           "reward among those up to it: a search that learns climbs.");
  }
}

void learning_signals(Page& page, const std::vector<SearchStore::Signal>& signals) {
  std::map<std::string, Series> by_name;
  for (const SearchStore::Signal& s : signals) {
    Series& series = by_name[s.name];
    series.label = s.name;
    series.style = Series::Style::line;
    series.add(static_cast<double>(s.step), s.value);
  }
  if (by_name.empty()) return;
  page.html("<h3>The controller's learning signals</h3>\n<p>What the controller reported after each step that "
            "learned (<code>Controller::learning_signals</code>): e.g. PPO's policy entropy (nats per architecture; it "
            "falls as the policy settles), its reward baseline and loss; evolution's population fitness.</p>\n");
  std::size_t color = 0;
  for (auto& [name, series] : by_name) {
    series.color = color++;
    page.chart(Chart{"signal-" + name, name, "controller step (observe() calls)", name, {}, {series}, true},
               "<code>" + escape(name) + "</code> after each controller step.", Page::Width::half);
  }
}

void training_charts(Page& page, const std::vector<std::pair<std::string, fs::path>>& trainings, const std::string& id,
                     const std::string& what);

void top_architectures(Page& page, const fs::path& dir, const SearchStore& store, RunSpaces& spaces) {
  std::int64_t k = 5;
  if (const std::optional<json> s = read_object(dir / "search.json"); s && s->is_object() && s->contains("top"))
    k = std::max<std::int64_t>(1, static_cast<std::int64_t>(s->at("top").size()));
  const std::vector<StoredEvaluation> best = store.best(k);
  if (best.empty()) return;
  page.html(fmt::format("<h3>The {} best architectures</h3>\n", best.size()));
  const bool fidelities = std::any_of(best.begin(), best.end(), [](const StoredEvaluation& e) { return e.fidelity > 0; });
  Table t{{"rank", "evaluation", "reward", "final score", "parameters", "multiply-adds", "seconds", "hash"}, {}, "top"};
  if (fidelities) t.header.insert(t.header.begin() + 3, "fidelity");
  for (std::size_t i = 0; i < best.size(); ++i) {
    const StoredEvaluation& e = best[i];
    auto seconds = e.metrics.find("seconds");
    t.rows.push_back({std::to_string(i + 1), fmt::format("<a href=\"#cell-{0}\">#{0}</a>", e.index),
                      td_number(*e.reward_reached), td_number(e.final_score.value_or(kNaN)), "<td class=\"num\">" + metric_of(e, "params") + "</td>",
                      "<td class=\"num\">" + metric_of(e, "mult_adds") + "</td>",
                      td_number(seconds == e.metrics.end() ? kNaN : seconds->second), "<code>" + short_hash(e.hash) + "</code>"});
    if (fidelities) t.rows.back().insert(t.rows.back().begin() + 3, "<td class=\"num\">" + std::to_string(e.fidelity) + "</td>");
  }
  page.table(t);
  for (std::size_t i = 0; i < best.size(); ++i) {
    const StoredEvaluation& e = best[i];
    page.html(fmt::format("<details id=\"cell-{0}\"{1}><summary>rank {2}: evaluation #{0}, reward {3}</summary>\n"
                          "<div class=\"cells\" data-evaluation=\"{0}\">{4}</div></details>\n",
                          e.index, i < 3 ? " open" : "", i + 1, number(*e.reward_reached),
                          diagram_or_text(spaces, "search", e.genotype)));
  }
  std::vector<std::pair<std::string, fs::path>> curves;
  for (std::size_t i = 0; i < best.size(); ++i)
    if (fs::path file = dir / "search" / std::to_string(best[i].index) / "metrics.jsonl"; fs::exists(file))
      curves.emplace_back(fmt::format("rank {} (#{})", i + 1, best[i].index), file);
  training_charts(page, curves, "top", "the best children's trainings in the search");
}

void search_section(Page& page, const fs::path& dir, const SearchStore& store, RunSpaces& spaces) {
  page.section("Search", "search");
  const std::vector<StoredEvaluation> rows = store.evaluations();
  if (rows.empty()) {
    page.paragraph("No evaluation stored yet.");
    return;
  }
  page.paragraph(fmt::format("{} proposals, space <code>{}</code>.", rows.size(), escape(rows.front().space)));
  search_progress(page, rows);
  learning_signals(page, store.signals());
  top_architectures(page, dir, store, spaces);
}

// --- training --------------------------------------------------------------------------------------

// Loss and accuracy per epoch (the last line of each epoch: a resumed training repeats the epoch it was
// in) and the loss per logged step, one series per training.
void training_charts(Page& page, const std::vector<std::pair<std::string, fs::path>>& trainings, const std::string& id,
                     const std::string& what) {
  if (trainings.empty()) return;
  const bool one = trainings.size() == 1;
  Chart loss{id + "-loss", "Loss per epoch", "epoch", "cross-entropy loss", {}, {}, true};
  Chart accuracy{id + "-accuracy", "Accuracy per epoch", "epoch", "top-1 accuracy", {}, {}, true};
  Chart steps{id + "-steps", "Training loss per step", "step", "loss (running, as logged)", {}, {}, true};
  std::size_t color = 0;
  for (const auto& [label, file] : trainings) {
    std::map<std::int64_t, json> epochs;
    std::map<double, double> losses;  // by step
    for (json& line : read_jsonl(file)) {
      if (line.contains("train_loss")) epochs[line.value("epoch", std::int64_t{0})] = line;
      else if (line.contains("loss") && line.contains("step")) losses[number_or_nan(line, "step")] = number_or_nan(line, "loss");
    }
    Series step_loss{one ? "train" : label, Series::Style::line, {}, {}, {}, {}, "circle", color};
    for (const auto& [step, loss] : losses) step_loss.add(step, loss);
    auto per_epoch = [&](const char* key, const std::string& name, std::size_t c) {
      Series s{one ? name : fmt::format("{} {}", label, name), Series::Style::line, {}, {}, {}, {}, "circle", c};
      for (const auto& [epoch, line] : epochs)
        if (double v = number_or_nan(line, key); std::isfinite(v)) s.add(static_cast<double>(epoch + 1), v);
      return s;
    };
    // One training: train and validation in two colors; several: a color each, validation only.
    if (one) {
      loss.series.push_back(per_epoch("train_loss", "train", 0));
      accuracy.series.push_back(per_epoch("train_top1", "train", 0));
    }
    loss.series.push_back(per_epoch("val_loss", "validation", one ? 1 : color));
    accuracy.series.push_back(per_epoch("val_top1", "validation", one ? 1 : color));
    steps.series.push_back(std::move(step_loss));
    ++color;
  }
  page.chart(std::move(accuracy), std::string(one ? "Top-1 accuracy on the training batches (running, during the epoch) "
                                                    "and on the held-out validation split (after it), "
                                                  : "Top-1 accuracy on the held-out validation split after each epoch, ") +
                                      escape(what) + ".", Page::Width::half);
  page.chart(std::move(loss), "Cross-entropy loss per epoch, " + escape(what) + ".", Page::Width::half);
  page.chart(std::move(steps), "The running training loss every <code>log_every</code> steps, " + escape(what) + ".");
}

void training_section(Page& page, const fs::path& dir, const YAML::Node& config, RunSpaces& spaces) {
  const std::optional<json> retrain = read_json(dir / "retrain.json");
  const std::optional<json> result = read_object(dir / "result.json");
  const bool curves = fs::exists(dir / "metrics.jsonl") || fs::exists(dir / "retrain");
  if (!retrain && !result && !curves) return;
  page.section("Training and transfer", "training");
  if (retrain && retrain->is_array()) {
    page.html("<h3>Retrained architectures</h3>\n");
    Table t{{"architecture", "validation top-1", "parameters", "multiply-adds", "seconds", "worker", "failure"}, {}, "retrain"};
    for (const json& r : *retrain) {
      if (!r.is_object()) continue;
      const json metrics = r.value("metrics", json::object());
      t.rows.push_back({"<code>" + cell_text(r, "file") + "</code>", td_number(number_or_nan(r, "validation_top1")),
                        td_count(number_or_nan(metrics, "params")), td_count(number_or_nan(metrics, "mult_adds")),
                        td_number(number_or_nan(metrics, "seconds")), cell_text(r, "worker"), cell_text(r, "failure")});
    }
    page.table(t);
    std::vector<std::pair<std::string, fs::path>> trainings;
    for (std::size_t i = 0; i < retrain->size(); ++i)
      if (fs::path file = dir / "retrain" / std::to_string(i) / "metrics.jsonl"; fs::exists(file))
        trainings.emplace_back(
            fs::path((*retrain)[i].is_object() ? (*retrain)[i].value("file", std::string()) : "").filename().string(), file);
    training_charts(page, trainings, "retrain", "each retrained architecture");
  }
  if (fs::exists(dir / "metrics.jsonl") || result) {
    const std::string stage = config["final"] ? "final" : "train";
    page.html(fmt::format("<h3>The <code>{}</code> stage</h3>\n", stage));
    if (result) {
      Table t{{"genotype", "test top-1", "test top-5", "validation top-1", "parameters", "multiply-adds", "steps", "images/s"},
              {}, "result"};
      t.rows.push_back({"<code>" + cell_text(*result, "genotype") + "</code>", td_number(number_or_nan(*result, "test_top1")),
                        td_number(number_or_nan(*result, "test_top5")), td_number(number_or_nan(*result, "validation_top1")),
                        td_count(number_or_nan(*result, "params")), td_count(number_or_nan(*result, "mult_adds")),
                        td_count(number_or_nan(*result, "steps")), td_number(number_or_nan(*result, "images_per_second"))});
      page.table(t);
      if (result->is_object() && result->value("diverged", false)) page.paragraph("<b class=\"worse\">The training diverged.</b>");
    }
    training_charts(page, {{stage, dir / "metrics.jsonl"}}, stage, "the " + stage + " stage");
    if (std::ifstream in(dir / "best.genotype"); in) {
      const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      page.html("<details open><summary>the transferred architecture (<code>best.genotype</code>)</summary>"
                "<div class=\"cells\" data-genotype=\"best\">" + diagram_or_text(spaces, stage, text) + "</div></details>\n");
    }
  }
}

}  // namespace

std::optional<json> read_json(const fs::path& file) {
  std::ifstream in(file);
  if (!in) return std::nullopt;
  json j = json::parse(in, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

Page run_page(const fs::path& dir, const Registry* registry, Logger& log) {
  YAML::Node config;
  try {
    config = YAML::LoadFile((dir / "config.yaml").string());
  } catch (const YAML::Exception& e) {
    throw Error(fmt::format("report: cannot read '{}': {}", (dir / "config.yaml").string(), e.what()));
  }
  const std::string name = config["experiment"] ? config["experiment"]["name"].as<std::string>("run") : "run";
  Page page(fmt::format("Run {} ({})", name, dir.filename().string()));
  std::optional<SearchStore> store;
  std::string store_problem;
  if (fs::exists(dir / "search.sqlite")) {
    try {
      store.emplace(dir / "search.sqlite", SearchStore::Access::read);
    } catch (const Error& e) {  // e.g. a search in its first instant, before its tables exist
      store_problem = e.what();
    }
  }
  RunSpaces spaces(dir, registry, log);
  summary(page, dir, config, store);
  if (!store_problem.empty()) page.paragraph("<span class=\"note\">The search's store cannot be read: " +
                                             escape(store_problem) + "</span>");
  if (store) search_section(page, dir, *store, spaces);
  training_section(page, dir, config, spaces);
  return page;
}

}  // namespace nas::report
