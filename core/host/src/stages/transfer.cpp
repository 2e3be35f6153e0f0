// The transfer half of the paper: `select` takes the best distinct architectures of a search,
// `retrain` trains each at a larger N@F (across the workers, when the run has them) and keeps the
// best by validation accuracy as best.genotype, which the `train` stage then trains at the target size.

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "cluster.hpp"
#include "nas/files.hpp"
#include "nas/dataset.hpp"
#include "nas/evaluator.hpp"
#include "nas/genotype_file.hpp"
#include "nas/log.hpp"
#include "nas/recipe.hpp"
#include "nas/regularizer.hpp"
#include "nas/space.hpp"
#include "work_queue/work_queue.hpp"
#include "stages/evaluator_process.hpp"
#include "stages/stages.hpp"

namespace fs = std::filesystem;

namespace nas::stages {
namespace {

void run_select(const StageConfig& stage, const Registry& registry, const StageContext& context) {
  const std::string& from = stage.params.get<std::string>("from");
  fs::path file = from.empty() ? context.run_dir / "search.sqlite" : fs::path(from);
  if (fs::is_directory(file)) file /= "search.sqlite";
  if (!fs::is_regular_file(file))
    throw UsageError(fmt::format("select: no search store at '{}'; run a search stage before it, or set select.from to "
                                 "a run folder", file.string()));
  SearchStore store(file);
  const auto top_k = stage.params.get<std::int64_t>("top_k");
  std::vector<StoredEvaluation> best = store.best(top_k);
  if (best.empty()) throw Error(fmt::format("select: '{}' holds no successful evaluation", file.string()));
  auto [table, list] = write_ranked(best, *make_space(stage, registry, context), *stage.one("space"),
                                    context.run_dir / "selected", file.string());
  write_file(context.run_dir / "selected.json", list.dump(2) + "\n");
  context.log.info("selected the {} best distinct architectures of {} (asked for {}) into {}:\n{}", best.size(),
                   file.string(), top_k, (context.run_dir / "selected").string(), table);
}

// The genotype files to retrain, in rank order: <dir>/1.genotype, 2.genotype, ...
std::vector<fs::path> ranked_files(const fs::path& dir) {
  std::vector<fs::path> files;
  for (int rank = 1; fs::is_regular_file(dir / fmt::format("{}.genotype", rank)); ++rank)
    files.push_back(dir / fmt::format("{}.genotype", rank));
  if (files.empty())
    throw UsageError(fmt::format("retrain: no genotype files (1.genotype, 2.genotype, ...) in '{}'; run a select stage "
                                 "before it, or set retrain.from", dir.string()));
  return files;
}

// The evaluator that trains with the stage's recipe: a retrained child is a search's child, larger.
std::unique_ptr<Evaluator> make_trainer(const StageConfig& stage, const Registry& registry, const StageContext& context) {
  std::string name = stage.params.get<std::string>("evaluator");
  if (name.empty()) {
    const std::vector<const Entry*> found = registry.with_capability("evaluator", capability::trains_recipe);
    std::vector<std::string> names;
    for (const Entry* e : found) names.push_back(e->name);
    if (found.size() != 1)
      throw UsageError(found.empty() ? fmt::format("retrain: no loaded evaluator plugin declares the capability '{}' "
                                                   "(trains with the recipe); evaluator/train does",
                                                   capability::trains_recipe)
                                     : fmt::format("retrain: several evaluators train with the recipe ({}); choose one "
                                                   "with retrain.evaluator", fmt::join(names, ", ")));
    name = found.front()->name;
  } else if (!registry.require("evaluator", name).has(capability::trains_recipe)) {
    throw UsageError(fmt::format("retrain.evaluator: evaluator/{} does not declare the capability '{}' (trains with "
                                 "the recipe)", name, capability::trains_recipe));
  }
  return make_evaluator(stage, registry, context, make_space(stage, registry, context), registry.require("evaluator", name),
                        stage.params);
}

void run_retrain(const StageConfig& stage, const Registry& registry, const StageContext& context) {
  const Params& p = stage.params;
  const std::string& from = p.get<std::string>("from");
  const std::vector<fs::path> files = ranked_files(from.empty() ? context.run_dir / "selected" : fs::path(from));
  auto space = make_space(stage, registry, context);

  const bool distributed = context.cluster && context.cluster->world().size > 1;
  auto dispatch = make_dispatch(context.cluster, context.log, "retrain",
                                QueueTimeouts{p.get<double>("heartbeat_timeout"), p.get<double>("no_worker_timeout")},
                                [&] { return stage_evaluator(stage, registry, context); });
  context.log.info("retraining {} architectures at {} for {} epochs{}", files.size(), space->model_name(p),
                   p.get<std::int64_t>("epochs"),
                   distributed ? fmt::format(" on {} workers", context.cluster->world().size - 1) : "");
  std::vector<std::string> genotypes;
  for (std::size_t i = 0; i < files.size(); ++i) {
    genotypes.push_back(space->canonical(read_genotype_file("retrain", files[i]), files[i].string()));
    dispatch->submit({static_cast<std::int64_t>(i), {}, genotypes.back(), architecture_hash(*space, genotypes.back())});
  }
  std::vector<Finished> results(files.size());
  for (std::size_t n = 0; n < files.size(); ++n) {
    Finished f = dispatch->next();
    const auto i = static_cast<std::size_t>(f.index);
    context.log.info("{}: {} ({:.0f} s)", files[i].string(),
                     f.evaluation.reward ? fmt::format("validation accuracy {:.4f}", *f.evaluation.reward)
                                         : "failed: " + f.evaluation.failure,
                     f.finished - f.started);
    results[i] = std::move(f);
  }
  std::optional<std::size_t> best;
  nlohmann::ordered_json report = nlohmann::ordered_json::array();
  for (std::size_t i = 0; i < results.size(); ++i) {
    const Evaluation& e = results[i].evaluation;
    if (e.reward && (!best || *e.reward > *results[*best].evaluation.reward)) best = i;
    report.push_back({{"file", files[i].string()},
                      {"validation_top1", e.reward ? nlohmann::json(*e.reward) : nlohmann::json()},
                      {"failure", e.failure}, {"metrics", e.metrics}, {"worker", results[i].worker}});
  }
  write_file(context.run_dir / "retrain.json", report.dump(2) + "\n");
  if (!best) throw Error("retrain: every architecture failed; see retrain.json");
  write_file(context.run_dir / "best.genotype",
             fmt::format("# best of {} retrained at {}: validation accuracy {:.6f}, from {}\n", files.size(),
                         space->model_name(p), *results[*best].evaluation.reward, files[*best].string()) +
                 space_comment(*stage.one("space")) + genotypes[*best]);
  context.log.info("best: {} (validation accuracy {:.4f}) -> {}", files[*best].string(), *results[*best].evaluation.reward,
                   (context.run_dir / "best.genotype").string());
}

void serve_retrain(const StageConfig& stage, const Registry& registry, const StageContext& context) {
  auto trainer = stage_evaluator(stage, registry, context);
  serve(*context.cluster, "retrain", *trainer, context.log);
}

}  // namespace

StageDef select() {
  using namespace param;
  return StageDef{.name = "select",
                  .doc = "writes the best distinct architectures of a search as selected/<rank>.genotype",
                  .params = {path("from", "").help("a search's run folder or search.sqlite; empty: this run's"),
                             integer("top_k", 5).range(1, 100000).help("architectures to select")},
                  .slots = {Slot{"space", "space", true, false, "the search's space"}},
                  .run = run_select};
}

StageDef retrain() {
  using namespace param;
  Schema schema{path("from", "").help("folder of 1.genotype, 2.genotype, ...; empty: this run's selected/"),
                string("evaluator", "").help("the evaluator that trains (one declaring trains_recipe); empty: the "
                                             "only one loaded (evaluator/train)"),
                number("heartbeat_timeout", 30.0).range(1, 86400).help("seconds without a heartbeat before a worker's "
                                                                       "training goes to another"),
                number("no_worker_timeout", 300.0).range(1, 864000).help(
                    "seconds without any live worker before the stage stops (exit 1; --resume continues)")};
  for (ParamSpec& spec : isolation_params()) schema.push_back(std::move(spec));
  for (ParamSpec& spec : recipe_schema()) schema.push_back(std::move(spec));
  return StageDef{.name = "retrain",
                  .doc = "retrains selected architectures at a larger N@F and keeps the best by validation accuracy "
                         "(best.genotype)",
                  .params = schema,
                  .slots = {Slot{"space", "space", true, false, "the space of the genotypes"},
                            Slot{"dataset", "dataset", true, false, "the data to train on"},
                            Slot{"regularizers", "regularizer", false, true, "regularizers, applied in order"}},
                  .run = run_retrain,
                  .serve = serve_retrain,
                  .evaluator = make_trainer,
                  .trains = true};
}

}  // namespace nas::stages
