// Stage "search": the controller proposes architectures in rounds, the evaluator turns each into a
// reward, the store records every step; none reaches into another (the controller sees decisions and
// rewards, the evaluator candidates, the store rows). Outputs: search.sqlite, top/<rank>.genotype,
// search.json.

#include <algorithm>
#include <chrono>
#include <deque>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "nas/files.hpp"
#include "nas/controller.hpp"
#include "nas/evaluator.hpp"
#include "nas/scheduler.hpp"
#include "nas/log.hpp"
#include "nas/space.hpp"
#include "nas/genotype_file.hpp"
#include "nas/store.hpp"
#include "cluster.hpp"
#include "duration_text.hpp"
#include "work_queue/work_queue.hpp"
#include "stages/evaluator_process.hpp"
#include "stages/stages.hpp"

namespace fs = std::filesystem;

namespace nas::stages {
namespace {

constexpr double kMeaningfulEvaluation = 0.01;  // seconds per evaluation

struct Budget {
  std::int64_t evaluations = 0;
  double wall_time = 0;      // seconds; 0: none
  double target_reward = 0;  // 0: none
};

/// The search's running state: what the store holds, summarized for progress and stopping.
class Progress {
 public:
  Progress(Logger& log, Budget budget, double seconds_before)
      : log_(log), budget_(budget), seconds_before_(seconds_before), start_(std::chrono::steady_clock::now()) {}

  void proposed(std::int64_t count) { proposed_ += count; }
  /// A row that is no longer pending; `now`: by this process (for the rate).
  void finished(const StoredEvaluation& e, bool now) {
    ++finished_;
    if (now) ++finished_now_;
    better(e.index, e.reward);
  }
  /// A result of any job (multi-fidelity: a promotion's too).
  void better(std::int64_t index, const std::optional<double>& reward) {
    if (reward && (!best_ || *reward > best_->second)) best_ = {index, *reward};
  }

  double seconds() const {
    return seconds_before_ + std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  std::int64_t proposed_count() const { return proposed_; }
  std::int64_t finished_count() const { return finished_; }

  /// Why the search must stop now, or empty.
  std::string stop_reason(bool before_proposing) const {
    if (best_ && budget_.target_reward > 0 && best_->second >= budget_.target_reward)
      return fmt::format("reward {:.4f} reached the target {}", best_->second, budget_.target_reward);
    if (budget_.wall_time > 0 && seconds() >= budget_.wall_time)
      return fmt::format("wall time {} used", duration_text(budget_.wall_time));
    if (before_proposing && proposed_ >= budget_.evaluations)
      return fmt::format("{} evaluations done", budget_.evaluations);
    return {};
  }

  void report(const StoredEvaluation& e, double took) {
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double rate = finished_now_ / std::max(elapsed, 1e-9);  // per second, this process
    std::string result = e.reward ? fmt::format("{:.4f}", *e.reward) : "failed";
    if (e.status == EvaluationStatus::reused) result += fmt::format(" (reused #{})", *e.reused_from);
    if (e.status == EvaluationStatus::failed) log_.warn("#{} failed: {}", e.index, e.failure);
    std::string line = fmt::format("search: {}/{} · #{} {} · best {} · {:.1f}/min · ETA {}", finished_, budget_.evaluations,
                                   e.index, result, best(), 60 * rate,
                                   rate > 0 ? duration_text((budget_.evaluations - finished_) / rate) : "?");
    show(line, took);
  }

  /// A promotion's result (multi-fidelity).
  void report(const Job& job, const Evaluation& evaluation, double took) {
    if (!evaluation.reward) log_.warn("#{} failed at fidelity {}: {}", job.index, job.fidelity, evaluation.failure);
    show(fmt::format("search: {}/{} · #{} at fidelity {}: {} · best {}", finished_, budget_.evaluations, job.index,
                     job.fidelity, evaluation.reward ? fmt::format("{:.4f}", *evaluation.reward) : "failed", best()),
         took);
  }

 private:
  Logger& log_;
  Budget budget_;
  double seconds_before_;
  std::chrono::steady_clock::time_point start_;
  std::string best() const { return best_ ? fmt::format("{:.4f} (#{})", best_->second, best_->first) : "none"; }
  void show(const std::string& line, double took) {
    if (took >= 1.0)
      log_.info("{} ({})", line, duration_text(took));  // slow evaluations: one line each, kept
    else
      log_.progress(line);
  }

  std::int64_t proposed_ = 0, finished_ = 0, finished_now_ = 0;
  std::optional<std::pair<std::int64_t, double>> best_;  // index, reward: the best result of any job
};

std::function<double(double)> reward_transform(const std::string& name) {
  if (name == "cube") return [](double r) { return r * r * r; };
  return [](double r) { return r; };
}

/// Writes top/<rank>.genotype and search.json, and logs the table.
void summarize(const SearchStore& store, const Space& space, const PluginChoice& space_choice, std::int64_t top_k,
               const std::string& why,
               const StageContext& context) {
  const std::vector<StoredEvaluation> rows = store.evaluations();
  std::map<EvaluationStatus, std::int64_t> counts;
  for (const StoredEvaluation& e : rows) ++counts[e.status];
  const fs::path top_dir = context.run_dir / "top";
  auto [table, top] = write_ranked(store.best(top_k), space, space_choice, top_dir, context.run_dir.string());
  std::int64_t promotions = 0;
  for (const StoredJob& j : store.jobs())
    if (j.status == EvaluationStatus::ok || j.status == EvaluationStatus::failed) ++promotions;
  promotions -= counts[EvaluationStatus::ok] + counts[EvaluationStatus::failed];  // every child's first job
  nlohmann::ordered_json summary{{"stopped", why},
                                 {"evaluated", counts[EvaluationStatus::ok] + counts[EvaluationStatus::failed]},
                                 {"reused", counts[EvaluationStatus::reused]},
                                 {"failed", counts[EvaluationStatus::failed]},
                                 {"cancelled", counts[EvaluationStatus::cancelled]},
                                 {"promotions", std::max<std::int64_t>(0, promotions)},
                                 {"top", top}};
  write_file(context.run_dir / "search.json", summary.dump(2) + "\n");
  context.log.info("search stopped: {}; {} evaluated ({} failed), {} repeats reused; best cells in {}:\n{}", why,
                   summary["evaluated"].get<std::int64_t>(), counts[EvaluationStatus::failed],
                   counts[EvaluationStatus::reused], top_dir.string(), table);
}

struct Settings {
  Budget budget;
  std::int64_t batch = 20;
  bool asynchronous = true;
  std::int64_t depth = 1;  // asynchronous: proposals unfinished at once
  bool reuse = true;
  std::function<double(double)> transform;
  std::string space_key, controller_key, scheduler_key;
  bool learning_signals = false;  // the controller's plugin has Controller::learning_signals (ABI 2.2)
};

/// The loop: the controller proposes, the dispatch evaluates, the controller observes; the scheduler
/// says at which fidelity each child is first evaluated and which go further (promotions), in the
/// same slots. The controller learns from each child's first evaluation: the one fidelity every child
/// of a rung reaches, so the rewards it compares were measured alike (a promoted child's higher
/// reward says it trained longer as much as that it is better), and it learns without waiting for
/// promotions that asynchronous schedulers may make at any later time.
/// Synchronous: rounds of `batch` proposals, observed together in proposal order once all are done
/// (the same architectures whatever the number of workers). Asynchronous: `depth` proposals
/// unfinished at once; each result is observed as it arrives and a new proposal takes its place, so
/// no worker waits for a straggler (the controller decides when it learns, e.g. PPO every 20
/// results). The store records every proposal and observation with the controller's step (its
/// count of observe() calls), which lets a resumed search replay them from the latest snapshot.
class Search {
 public:
  Search(Settings settings, const Space& space, Controller& controller, Scheduler& scheduler, Dispatch& dispatch,
         SearchStore& store, const StageContext& context)
      : s_(std::move(settings)), space_(space), controller_(controller), scheduler_(scheduler), dispatch_(dispatch),
        store_(store), context_(context),
        progress_(context.log, s_.budget, std::stod(store.meta("seconds").value_or("0"))) {
    if (auto snapshot = store_.latest_snapshot()) {
      controller_.load_state(snapshot->state);
      step_ = snapshot->round;
    }
    history_ = store_.evaluations();
    for (const StoredEvaluation& e : history_) {
      if (e.status == EvaluationStatus::cancelled) continue;
      progress_.proposed(1);
      if (e.status != EvaluationStatus::pending) progress_.finished(e, false);
    }
    next_index_ = history_.empty() ? 0 : history_.back().index + 1;
    replay();
    // The scheduler's state is a function of the jobs started and their results: rebuilt from them.
    for (const StoredJob& j : store_.jobs()) {
      if (j.status == EvaluationStatus::cancelled) continue;
      scheduler_.started(j.job);
      if (j.status == EvaluationStatus::pending) {
        interrupted_.push_back(j.job);
      } else {
        scheduler_.finished(j.job, j.reward);
        progress_.better(j.job.index, j.reward);  // a promotion's reward counts for target_reward too
      }
    }
  }

  bool resumed() const { return !history_.empty(); }
  std::int64_t step() const { return step_; }
  const Progress& progress() const { return progress_; }

  /// Runs until a budget stops the search; returns why it stopped.
  std::string run() {
    const auto run_start = std::chrono::steady_clock::now();
    std::set<std::int64_t> interrupted;  // the jobs the interruption left running start again as they were
    for (const Job& job : interrupted_) interrupted.insert(job.index);
    for (const StoredEvaluation& e : std::exchange(history_, {})) {  // what the interruption left unfinished
      if (e.status == EvaluationStatus::cancelled) continue;
      if (e.status != EvaluationStatus::reused) candidates_[e.index] = candidate(e);
      if (e.status == EvaluationStatus::pending) {
        ++unfinished_;
        if (!interrupted.contains(e.index)) {
          start(e);
        } else {
          first_pending_.insert(e.index);
          if (s_.reuse) waiting_.try_emplace(e.hash);  // its repeats wait for it again
        }
      } else if (!e.observed) {
        ready_.push_back(e);
      }
    }
    for (const Job& job : std::exchange(interrupted_, {})) dispatch(job, false);
    std::string why;
    for (;;) {
      if (!(why = progress_.stop_reason(false)).empty()) {  // wall time or target reward: stop now
        if (!running_.empty()) dispatch_.cancel();
        save_seconds();
        store_.cancel_pending();
        break;
      }
      if (observable()) {
        observe();
        continue;
      }
      if (!closed_ && progress_.proposed_count() >= s_.budget.evaluations && admission_.empty()) {
        scheduler_.no_more_children();  // a bracket waiting for children that will never come goes on
        closed_ = true;
      }
      if (fill()) continue;
      if (const std::int64_t count = std::min(room(), s_.budget.evaluations - progress_.proposed_count()); count > 0) {
        propose(count);
        continue;
      }
      if (running_.empty()) {
        why = progress_.stop_reason(true);
        if (unfinished_ > 0 || why.empty())  // a scheduler that admits no child and promotes none while nothing runs
          throw Error(fmt::format("search: the scheduler {} starts nothing while nothing runs ({} children wait)",
                                  s_.scheduler_key, unfinished_));
        break;
      }
      wait_for_result();
    }
    const double overhead = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count() - waited_;
    if (evaluated_now_ > 0) {
      const double per_evaluation = evaluating_ / static_cast<double>(evaluated_now_);
      // A ratio to evaluation time says something only when evaluations take time (not table lookups).
      context_.log.info("search overhead (controller, store, dispatch): {:.2f} ms per evaluation{}",
                        1e3 * overhead / static_cast<double>(evaluated_now_),
                        per_evaluation >= kMeaningfulEvaluation
                            ? fmt::format(", {:.3f}% of evaluation time", 100 * overhead / evaluating_)
                            : fmt::format(" (evaluations took {:.3f} ms each)", 1e3 * per_evaluation));
    }
    return why;
  }

 private:
  // How many proposals may be made now. Asynchronous: one per slot that neither a child still
  // waiting for its first result nor a promotion holds, while the scheduler admits new children.
  std::int64_t room() {
    if (s_.asynchronous)
      return admission_.empty() && scheduler_.admit() ? s_.depth - unfinished_ - promoting() : 0;
    return unfinished_ == 0 && ready_.empty() ? s_.batch : 0;
  }
  std::int64_t promoting() const {
    std::int64_t n = 0;
    for (const auto& [index, job] : running_) n += job.second ? 1 : 0;
    return n;
  }

  // Starts jobs in free slots: the scheduler's promotions first, then children waiting for their
  // first evaluation as far as it admits them. Returns whether it started any.
  bool fill() {
    bool any = false;
    while (static_cast<std::int64_t>(running_.size()) < s_.depth) {
      if (std::optional<Job> promotion = scheduler_.promotion()) {
        dispatch(*promotion, true);
      } else if (std::optional<std::int64_t> fidelity; !admission_.empty() && (fidelity = scheduler_.admit())) {
        const std::int64_t index = admission_.front();
        admission_.pop_front();
        dispatch(Job{index, *fidelity}, true);
      } else {
        break;
      }
      any = true;
    }
    return any;
  }

  // Sends a job to the dispatch; `fresh`: not one the interruption left running (the store and the
  // scheduler know those already).
  void dispatch(const Job& job, bool fresh) {
    if (fresh) {
      store_.start_job(job, now_seconds());
      scheduler_.started(job);
    }
    Candidate c = candidates_.at(job.index);
    c.fidelity = job.fidelity;
    running_[job.index] = {job.fidelity, !first_pending_.contains(job.index)};  // a promotion: its child has a result
    dispatch_.submit(c);
  }

  static Candidate candidate(const StoredEvaluation& e) { return Candidate{e.index, e.decisions, e.genotype, e.hash}; }
  bool observable() const { return !ready_.empty() && (s_.asynchronous || unfinished_ == 0); }

  // The controller's proposals, decoded, hashed, stored as pending rows and started.
  void propose(std::int64_t count) {
    std::vector<Proposal> proposals = checked_proposals(count);
    std::vector<StoredEvaluation> rows;
    for (Proposal& proposal : proposals) {
      StoredEvaluation e;
      e.index = next_index_++;
      e.round = step_;
      e.space = s_.space_key;
      try {
        e.genotype = space_.decode(proposal.decisions);
      } catch (const UsageError& error) {
        throw Error(fmt::format("{} proposed an invalid architecture: {}", s_.controller_key, error.what()));
      }
      e.hash = architecture_hash(space_, e.genotype);
      e.decisions = std::move(proposal.decisions);
      e.memo = std::move(proposal.memo);
      e.proposed_at = now_seconds();
      rows.push_back(std::move(e));
    }
    store_.add_proposals(rows);
    progress_.proposed(count);
    for (const StoredEvaluation& e : rows) {
      candidates_[e.index] = candidate(e);
      ++unfinished_;
      start(e);
    }
  }

  // Resuming: the restored controller makes again the proposals and observations stored after its
  // snapshot, which brings its state (generator included) where the uninterrupted run's was; the
  // stored rows stay what they were.
  void replay() {
    std::map<std::int64_t, std::vector<const StoredEvaluation*>> proposed, observed;  // by step
    for (const StoredEvaluation& e : history_) {
      if (e.round >= step_) proposed[e.round].push_back(&e);
      if (e.observed && *e.observed > step_) observed[*e.observed].push_back(&e);
    }
    bool warned = false;
    for (;; ++step_) {
      if (auto p = proposed.find(step_); p != proposed.end()) {
        std::vector<Proposal> again = checked_proposals(static_cast<std::int64_t>(p->second.size()));
        for (std::size_t i = 0; i < again.size() && !warned; ++i)
          if (again[i].decisions != p->second[i]->decisions) {
            context_.log.warn("resume: {} proposes differently than before the interruption (is it deterministic?); "
                              "the search continues with the stored proposals", s_.controller_key);
            warned = true;
          }
      }
      auto o = observed.find(step_ + 1);
      if (o == observed.end()) break;
      controller_.observe(outcomes(o->second));
    }
  }

  std::vector<Proposal> checked_proposals(std::int64_t count) {
    std::vector<Proposal> proposals = controller_.propose(count);
    if (static_cast<std::int64_t>(proposals.size()) != count)
      throw Error(fmt::format("{} proposed {} architectures, asked for {}", s_.controller_key, proposals.size(), count));
    return proposals;
  }

  // A pending row (counted in unfinished_): reuses the stored result of the same architecture,
  // waits for the same architecture already started, or waits for a slot and the scheduler.
  void start(const StoredEvaluation& e) {
    if (s_.reuse) {
      if (auto earlier = store_.first_evaluated(e.hash)) return reuse(e.index, earlier->index);
      if (auto [repeats, first] = waiting_.try_emplace(e.hash); !first) return repeats->second.push_back(e.index);
    }
    first_pending_.insert(e.index);
    admission_.push_back(e.index);
  }

  void wait_for_result() {
    const auto wait_start = std::chrono::steady_clock::now();
    Finished f = dispatch_.next();
    waited_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - wait_start).count();
    evaluating_ += f.finished - f.started;
    const Job job{f.index, running_.at(f.index).first};
    running_.erase(f.index);
    const bool first = store_.record_job(job, f.evaluation, f.worker, f.started, f.finished);
    scheduler_.finished(job, f.evaluation.reward);
    progress_.better(job.index, f.evaluation.reward);
    if (first) {
      first_pending_.erase(job.index);
      finished(f.index, f.finished - f.started);
    } else {
      save_seconds();  // an asynchronous scheduler's last stretch is promotions only
      progress_.report(job, f.evaluation, f.finished - f.started);
    }
  }

  // The search's time so far, for wall_time across resumes.
  void save_seconds() { store_.set_meta("seconds", fmt::format("{}", progress_.seconds())); }

  void reuse(std::int64_t index, std::int64_t from) {
    store_.record_reuse(index, from, now_seconds());
    finished(index, 0);
  }

  // A row just finished: read back as stored, counted, reported, ready for the controller; the
  // repeats that waited for it reuse it.
  void finished(std::int64_t index, double took) {
    StoredEvaluation e = store_.evaluation(index);
    --unfinished_;
    progress_.finished(e, true);
    ++evaluated_now_;
    save_seconds();
    progress_.report(e, took);
    auto repeats = waiting_.find(e.hash);
    ready_.push_back(std::move(e));
    if (repeats == waiting_.end()) return;
    const std::vector<std::int64_t> waiting = std::move(repeats->second);
    waiting_.erase(repeats);
    for (std::int64_t repeat : waiting) reuse(repeat, index);
  }

  // The controller learns from the oldest result (asynchronous) or the whole round in proposal order
  // (synchronous); a snapshot of its state follows every `batch` results.
  void observe() {
    std::vector<StoredEvaluation> rows;
    if (s_.asynchronous) {
      rows.push_back(std::move(ready_.front()));
      ready_.pop_front();
    } else {
      rows.assign(std::make_move_iterator(ready_.begin()), std::make_move_iterator(ready_.end()));
      ready_.clear();
      std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.index < b.index; });
    }
    std::vector<const StoredEvaluation*> observed;
    std::vector<std::int64_t> indices;
    for (const StoredEvaluation& e : rows) {
      observed.push_back(&e);
      indices.push_back(e.index);
    }
    controller_.observe(outcomes(observed));
    store_.record_observed(indices, ++step_, s_.learning_signals ? controller_.learning_signals()
                                                                 : std::map<std::string, double>{});
    if ((observed_since_snapshot_ += static_cast<std::int64_t>(rows.size())) >= s_.batch) {
      store_.save_snapshot({step_, controller_.save_state()});
      observed_since_snapshot_ = 0;
    }
  }

  std::vector<Outcome> outcomes(const std::vector<const StoredEvaluation*>& rows) const {
    std::vector<Outcome> list;
    for (const StoredEvaluation* e : rows) {
      Outcome o{Proposal{e->decisions, e->memo}, std::nullopt, e->failure};
      if (e->reward) o.reward = s_.transform(*e->reward);
      list.push_back(std::move(o));
    }
    return list;
  }

  Settings s_;
  const Space& space_;
  Controller& controller_;
  Scheduler& scheduler_;
  Dispatch& dispatch_;
  SearchStore& store_;
  const StageContext& context_;
  Progress progress_;
  std::vector<StoredEvaluation> history_;  // the store when the search started, until run() takes it up
  std::deque<StoredEvaluation> ready_;     // finished, not yet observed
  std::map<std::string, std::vector<std::int64_t>> waiting_;  // hash started -> rows waiting for its result
  std::map<std::int64_t, Candidate> candidates_;  // every row that is or was evaluated, by index (promotions)
  std::deque<std::int64_t> admission_;   // rows waiting for a slot and the scheduler, in index order
  std::set<std::int64_t> first_pending_; // rows whose first job has not finished (waiting or running)
  std::map<std::int64_t, std::pair<std::int64_t, bool>> running_;  // index -> fidelity, whether a promotion
  std::vector<Job> interrupted_;         // resuming: jobs the interruption left running
  bool closed_ = false;                  // the scheduler was told that no new child will come
  std::int64_t step_ = 0, next_index_ = 0, unfinished_ = 0, observed_since_snapshot_ = 0, evaluated_now_ = 0;
  double waited_ = 0, evaluating_ = 0;  // seconds, this process
};

// The search's screen for its controller: each architecture decoded and scored by `evaluator` in this
// process. Its candidate index (which seeds a proxy's initial weights) comes from the architecture's
// hash, not from a proposal, so an architecture always gets the same score, on a resume too.
Screen make_screen(Evaluator& evaluator, const Space& space, const std::string& key, Logger& log,
                   std::shared_ptr<std::int64_t> screened) {
  return [&evaluator, &space, key, &log, screened](const std::vector<std::vector<std::int64_t>>& architectures) {
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::optional<double>> scores;
    std::int64_t unscored = 0;
    for (const std::vector<std::int64_t>& decisions : architectures) {
      Candidate c;
      c.decisions = decisions;
      c.genotype = space.decode(decisions);
      c.hash = architecture_hash(space, c.genotype);
      c.index = static_cast<std::int64_t>(std::stoull(c.hash.substr(1), nullptr, 16));  // 60 bits: never negative
      const Evaluation e = evaluator.evaluate(c);
      scores.push_back(e.reward);
      unscored += e.reward ? 0 : 1;
      if (scores.size() % 25 == 0)  // the log file keeps each progress line
        log.progress(fmt::format("screen: {}/{} by {}", scores.size(), architectures.size(), key));
    }
    *screened += static_cast<std::int64_t>(architectures.size());
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const std::string line = fmt::format("screen: {} architectures scored by {} in {}{}", architectures.size(), key,
                                         duration_text(seconds),
                                         unscored > 0 ? fmt::format(" ({} could not be: ranked last)", unscored) : "");
    if (architectures.size() >= 100)
      log.info("{}", line);  // a warm-up: one line kept
    else
      log.progress(line);  // a pre-screened proposal's few
    return scores;
  };
}

void run(const StageConfig& stage, const Registry& registry, const StageContext& context) {
  const Params& p = stage.params;
  const PluginChoice& space_choice = *stage.one("space");
  const PluginChoice& controller_choice = *stage.one("controller");
  const PluginChoice& evaluator_choice = *stage.one("evaluator");
  std::shared_ptr<const Space> space = make_space(stage, registry, context);
  const std::vector<Decision> decisions = space->decisions();
  std::unique_ptr<Evaluator> screen_evaluator;  // outlives the controller, which may call it
  Screen screen;
  const PluginChoice* screen_choice = stage.one("screen");
  auto screened = std::make_shared<std::int64_t>(0);  // architectures the controller had scored
  if (screen_choice) {
    if (controller_choice.entry->plugin->abi_minor < 4)
      throw UsageError(fmt::format("search.screen: {} was built for ABI 2.{}, before controllers could use a screen "
                                   "(2.4); rebuild it or remove the screen", controller_choice.entry->key,
                                   controller_choice.entry->plugin->abi_minor));
    screen_evaluator = make_evaluator(stage, registry, context, space, *screen_choice->entry, screen_choice->params);
    screen = make_screen(*screen_evaluator, *space, screen_choice->entry->key, context.log, screened);
  }
  auto controller =
      registry.create<Controller>(controller_choice.entry->name, controller_choice.params, context, {decisions, screen});
  const PluginChoice* scheduler_choice = stage.one("scheduler");
  const std::string scheduler_name = scheduler_choice ? scheduler_choice->entry->name : "none";
  auto scheduler = registry.create<Scheduler>(
      scheduler_name, scheduler_choice ? scheduler_choice->params : default_params(registry.require("scheduler", "none").schema, "scheduler/none"),
      context, {p.get<std::int64_t>("evaluations")});
  if (scheduler->max_fidelity() > 0 && !evaluator_choice.entry->has(capability::multi_fidelity))
    throw UsageError(fmt::format("search: scheduler/{} evaluates children at fidelities below the full one; {} cannot (it "
                                 "does not declare {}); use an evaluator that does (train, synthetic, tabular) or "
                                 "scheduler none", scheduler_name, evaluator_choice.entry->key, capability::multi_fidelity));

  // Workers evaluate when the run has them; this process only coordinates then.
  const std::int64_t workers = context.cluster ? context.cluster->world().size - 1 : 0;
  auto dispatch = make_dispatch(context.cluster, context.log, "search",
                                QueueTimeouts{p.get<double>("heartbeat_timeout"), p.get<double>("no_worker_timeout")},
                                [&] { return stage_evaluator(stage, registry, context); });

  Settings settings{{p.get<std::int64_t>("evaluations"), p.get<double>("wall_time"), p.get<double>("target_reward")},
                    p.get<std::int64_t>("batch"),
                    p.get<std::string>("schedule") == "async",
                    workers > 0 ? workers + p.get<std::int64_t>("queue_ahead") : 1,
                    p.get<std::string>("repeats") == "reuse",
                    reward_transform(p.get<std::string>("reward_transform")),
                    space_choice.entry->key,
                    controller_choice.entry->key,
                    "scheduler/" + scheduler_name,
                    controller_choice.entry->plugin->abi_minor >= 2};
  const std::string schedule = settings.asynchronous
                                   ? fmt::format("asynchronous, {} in flight", settings.depth)
                                   : fmt::format("synchronous rounds of {}", settings.batch);
  const Budget budget = settings.budget;
  SearchStore store(context.run_dir / "search.sqlite");
  Search search(std::move(settings), *space, *controller, *scheduler, *dispatch, store, context);
  context.log.info("search: {} ({} decisions), {}, {}{}{}, {}; budget {} evaluations{}{}{}", space_choice.entry->key,
                   decisions.size(), controller_choice.entry->key, evaluator_choice.entry->key,
                   scheduler->max_fidelity() > 0 ? fmt::format(", scheduler/{} up to fidelity {}", scheduler_name,
                                                               scheduler->max_fidelity())
                                                 : "",
                   workers > 0 ? fmt::format(" on {} workers", workers) : "", schedule, budget.evaluations,
                   budget.wall_time > 0 ? fmt::format(", {}", duration_text(budget.wall_time)) : "",
                   budget.target_reward > 0 ? fmt::format(", target reward {}", budget.target_reward) : "",
                   search.resumed() ? fmt::format("; resuming at controller step {} with {} evaluations stored",
                                                  search.step(), search.progress().finished_count())
                                    : "");
  const std::string why = search.run();
  if (screen_choice && *screened == 0)
    context.log.warn("search: {} never asked the screen ({}) to score anything; controllers use it only when told to "
                     "(random: screen_candidates; evolution: warmup_candidates)", controller_choice.entry->key,
                     screen_choice->entry->key);
  summarize(store, *space, *stage.one("space"), p.get<std::int64_t>("top_k"), why, context);
}

// A worker's part: evaluate what the coordinator queues until it says the search is over.
void serve_search(const StageConfig& stage, const Registry& registry, const StageContext& context) {
  auto evaluator = stage_evaluator(stage, registry, context);
  serve(*context.cluster, "search", *evaluator, context.log);
}

std::unique_ptr<Evaluator> search_evaluator(const StageConfig& stage, const Registry& registry, const StageContext& context) {
  const PluginChoice& choice = *stage.one("evaluator");
  return make_evaluator(stage, registry, context, make_space(stage, registry, context), *choice.entry, choice.params);
}

}  // namespace

std::pair<std::string, nlohmann::ordered_json> write_ranked(const std::vector<StoredEvaluation>& ranked, const Space& space,
                                                            const PluginChoice& space_choice, const fs::path& dir,
                                                            const std::string& source) {
  fs::create_directories(dir);
  std::string table = fmt::format("{:>4}  {:>6}  {:>8}  {:>8}  {:>9}  {}\n", "rank", "eval", "reward", "final", "params", "hash");
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (std::size_t i = 0; i < ranked.size(); ++i) {
    const StoredEvaluation& e = ranked[i];
    const fs::path file = dir / fmt::format("{}.genotype", i + 1);
    const std::string at = e.fidelity > 0 ? fmt::format(" at fidelity {}", e.fidelity) : "";
    write_file(file, fmt::format("# rank {} of {}: reward {:.6f}{}, evaluation #{}, hash {}\n", i + 1, source,
                                 *e.reward_reached, at, e.index, e.hash) +
                         space_comment(space_choice) + space.canonical(e.genotype, file.string()));
    auto params = e.metrics.find("params");
    table += fmt::format("{:>4}  {:>6}  {:>8.4f}  {:>8}  {:>9}  {}{}\n", i + 1, fmt::format("#{}", e.index), *e.reward_reached,
                         e.final_score ? fmt::format("{:.4f}", *e.final_score) : "-",
                         params != e.metrics.end() ? fmt::format("{:.3f}M", params->second / 1e6) : "-", e.hash, at);
    list.push_back({{"rank", i + 1}, {"index", e.index}, {"hash", e.hash}, {"reward", *e.reward_reached},
                    {"fidelity", e.fidelity},
                    {"final_score", e.final_score ? nlohmann::json(*e.final_score) : nlohmann::json()},
                    {"metrics", e.metrics}, {"file", file.string()}});
  }
  return {table, list};
}

StageDef search() {
  using namespace param;
  Schema schema{integer("evaluations", 100).at_least(1).help("budget: architectures to propose (repeats included)"),
       number("wall_time", 0.0).at_least(0).help("budget: seconds (across resumes); 0: none"),
       number("target_reward", 0.0).help("stop once a reward reaches this; 0: never"),
       choice("schedule", {"async", "sync"}, "async")
           .help("async: each result is observed as it arrives and replaced by a new proposal (workers never wait); "
                 "sync: rounds of `batch`, observed in proposal order (the same architectures for any number of workers)"),
       integer("batch", 20).range(1, 100000).help("sync: proposals per round; both: results between controller snapshots"),
       integer("queue_ahead", 1).range(0, 100000).help("async with workers: proposals queued beyond one per worker"),
       choice("reward_transform", {"identity", "cube"}, "identity").help("what the controller learns from: reward or reward^3"),
       choice("repeats", {"reuse", "evaluate"}, "reuse").help("an architecture evaluated before: reuse its result, or evaluate it again"),
       integer("top_k", 5).range(1, 10000).help("best distinct architectures written to top/"),
       number("heartbeat_timeout", 30.0).range(1, 86400).help("seconds without a heartbeat before a worker's evaluation goes to another"),
       number("no_worker_timeout", 300.0).range(1, 864000).help(
           "seconds without any live worker before the search stops (exit 1; --resume continues)")};
  for (ParamSpec& spec : isolation_params()) schema.push_back(std::move(spec));
  return StageDef{
      .name = "search",
      .doc = "searches a space: a controller proposes architectures, an evaluator rewards them, a store records it all",
      .params = std::move(schema),
      .slots = {Slot{"space", "space", true, false, "the search space"},
                Slot{"controller", "controller", true, false, "proposes architectures"},
                Slot{"evaluator", "evaluator", true, false, "rewards them"},
                Slot{"dataset", "dataset", false, false, "the data evaluators train on (evaluator/train)"},
                Slot{"regularizers", "regularizer", false, true, "regularizers for children the evaluator trains"},
                Slot{"scheduler", "scheduler", false, false,
                     "multi-fidelity: which children train further, which stop early (default none: all in full)"},
                Slot{"screen", "evaluator", false, false,
                     "scores architectures without training them (e.g. proxy), for controllers that pre-screen "
                     "(random: screen_candidates; evolution: warmup_candidates)"}},
      .run = run,
      .serve = serve_search,
      .evaluator = search_evaluator,
  };
}

}  // namespace nas::stages
