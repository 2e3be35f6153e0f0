// scheduler/successive_halving, scheduler/hyperband and scheduler/asha: successive halving on a
// ladder of rungs, min_fidelity ... max_fidelity, each `reduction` times the one below (counted down
// from max_fidelity and rounded: 1, 3, 9, 27 for 1..27 and reduction 3; 1, 3, 10 for 1..10).
//
// successive_halving (Jamieson & Talwalkar 2016) runs brackets of `children` new children one after
// another: all start at the lowest rung; when every job of a rung has finished, the best
// 1/reduction of them (at least one) go on to the next rung, the rest stop there. hyperband (Li et
// al. 2017) cycles through brackets that start at each rung in turn, from the lowest, each with the
// number of children Hyperband gives it for the same budget. Both are synchronous: a bracket waits
// for its rung to finish before anyone is promoted, and the next bracket starts when it is done.
//
// asha (Li et al. 2020) never waits: whenever a slot is free, a child in the best 1/reduction of its
// rung's results so far that has not been promoted yet goes one rung up (the highest rung first);
// with none, a new child starts at the lowest rung.
//
// Every decision is a function of which jobs started and which results are in (results ranked by
// reward, ties to the lower index; a failed job ranks last and is never promoted), so a resumed
// search rebuilds the same state from its store.
#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "nas/error.hpp"
#include "nas/options.hpp"
#include "nas/plugin.hpp"
#include "nas/scheduler.hpp"

namespace {

struct LadderOptions {
  std::int64_t min_fidelity = 1;
  std::int64_t max_fidelity = 9;
  std::int64_t reduction = 3;

  static auto fields() {
    using O = LadderOptions;
    return std::tuple{
        nas::field("min_fidelity", &O::min_fidelity).range(1, 1000000).help(
            "the lowest rung, in the evaluator's unit (evaluator/train: epochs)"),
        nas::field("max_fidelity", &O::max_fidelity).range(1, 1000000).help(
            "the highest rung: a child evaluated in full (evaluator/train: at most the recipe's epochs)"),
        nas::field("reduction", &O::reduction).range(2, 1000).help(
            "each rung is this many times the one below, and keeps 1/reduction of its children")};
  }
};

struct HalvingOptions {
  std::int64_t children = 27;

  static auto fields() {
    return std::tuple{nas::field("children", &HalvingOptions::children).range(1, 1000000).help(
        "new children per bracket (all start at the lowest rung)")};
  }
};

/// The rungs' fidelities, ascending.
std::vector<std::int64_t> ladder(const LadderOptions& o) {
  if (o.min_fidelity > o.max_fidelity)
    throw nas::UsageError(fmt::format("scheduler: min_fidelity ({}) is above max_fidelity ({})", o.min_fidelity,
                                      o.max_fidelity));
  const auto top = static_cast<std::int64_t>(
      std::floor(std::log(static_cast<double>(o.max_fidelity) / static_cast<double>(o.min_fidelity)) /
                     std::log(static_cast<double>(o.reduction)) + 1e-9));
  std::vector<std::int64_t> rungs;
  for (std::int64_t k = top; k >= 0; --k) {
    const auto r = std::max(o.min_fidelity, static_cast<std::int64_t>(std::llround(
                                                static_cast<double>(o.max_fidelity) / std::pow(static_cast<double>(o.reduction), k))));
    if (rungs.empty() || r > rungs.back()) rungs.push_back(r);
  }
  return rungs;
}

/// Results of one rung (index -> reward; empty: failed), best first on request.
using Results = std::map<std::int64_t, std::optional<double>>;

/// The best `count` of `results`: reward descending, ties to the lower index, failures never.
std::vector<std::int64_t> best(const Results& results, std::size_t count) {
  std::vector<std::pair<double, std::int64_t>> ok;
  for (const auto& [index, reward] : results)
    if (reward) ok.emplace_back(-*reward, index);
  std::sort(ok.begin(), ok.end());
  std::vector<std::int64_t> out;
  for (std::size_t i = 0; i < std::min(count, ok.size()); ++i) out.push_back(ok[i].second);
  return out;
}

/// What both kinds keep: the rungs, and per rung who started and who finished with what.
class Ladder : public nas::Scheduler {
 public:
  explicit Ladder(std::vector<std::int64_t> rungs)
      : rungs_(std::move(rungs)), started_(rungs_.size()), finished_(rungs_.size()) {}

  void started(const nas::Job& job) override { started_[rung(job.fidelity)].insert(job.index); }
  void finished(const nas::Job& job, std::optional<double> reward) override {
    finished_[rung(job.fidelity)][job.index] = reward;
  }
  std::int64_t max_fidelity() const override { return rungs_.back(); }
  void no_more_children() override {}  // asha never waits for children; Brackets closes its last bracket

 protected:
  std::size_t rung(std::int64_t fidelity) const {
    auto at = std::find(rungs_.begin(), rungs_.end(), fidelity);
    if (at == rungs_.end())
      throw nas::Error(fmt::format("scheduler: fidelity {} is not one of its rungs ({})", fidelity, fmt::join(rungs_, ", ")));
    return static_cast<std::size_t>(at - rungs_.begin());
  }

  std::vector<std::int64_t> rungs_;
  std::vector<std::set<std::int64_t>> started_;
  std::vector<Results> finished_;
};

class Asha final : public Ladder {
 public:
  Asha(std::vector<std::int64_t> rungs, std::int64_t reduction) : Ladder(std::move(rungs)), reduction_(reduction) {}

  std::optional<nas::Job> promotion() override {
    for (std::size_t k = rungs_.size() - 1; k-- > 0;) {
      const std::size_t keep = finished_[k].size() / static_cast<std::size_t>(reduction_);
      for (std::int64_t index : best(finished_[k], keep))
        if (!started_[k + 1].contains(index)) return nas::Job{index, rungs_[k + 1]};
    }
    return std::nullopt;
  }
  std::optional<std::int64_t> admit() override { return rungs_.front(); }

 private:
  std::int64_t reduction_;
};

/// Synchronous brackets, one after another. Bracket b starts `size` children at rung `first`; a
/// rung of n children promotes its best max(1, n / reduction) once all n have finished.
class Brackets final : public Ladder {
 public:
  struct Bracket {
    std::size_t first = 0;  // the rung its children start at
    std::int64_t size = 0;  // its children
  };
  /// `plan(b)`: bracket b; `budget`: the search's children in all (0: unknown), which cuts the last
  /// bracket short rather than leave it waiting for children that will never come.
  Brackets(std::vector<std::int64_t> rungs, std::int64_t reduction, std::function<Bracket(std::int64_t)> plan,
           std::int64_t budget)
      : Ladder(std::move(rungs)), reduction_(reduction), plan_(std::move(plan)), budget_(budget) {}

  void started(const nas::Job& job) override {
    Ladder::started(job);
    if (first_job(job)) admitted_.insert(job.index);
  }
  void no_more_children() override { closed_ = true; }

  std::optional<nas::Job> promotion() override {
    for (const Span& b : spans())
      for (const Rung& rung : walk(b))
        for (std::int64_t index : rung.members)
          if (!started_[rung.k].contains(index)) return nas::Job{index, rungs_[rung.k]};
    return std::nullopt;
  }

  std::optional<std::int64_t> admit() override {
    const std::vector<Span> all = spans();
    const Span& last = all.back();
    if (static_cast<std::int64_t>(last.children.size()) < size(last)) return rungs_[last.bracket.first];
    const std::vector<Rung> rungs = walk(last);
    for (const Rung& rung : rungs)  // the next bracket starts when this one is over
      for (std::int64_t index : rung.members)
        if (!finished_[rung.k].contains(index)) return std::nullopt;
    return rungs_[plan_(last.number + 1).first];
  }

 private:
  struct Span {
    std::int64_t number = 0;
    Bracket bracket;
    std::int64_t before = 0;              // children admitted in earlier brackets
    std::vector<std::int64_t> children;   // its children, by index
  };
  struct Rung {
    std::size_t k = 0;
    std::vector<std::int64_t> members;  // decided: the bracket's children, or the best of the rung below
  };

  // The brackets so far: the admitted children in index order, cut into each bracket's size.
  std::vector<Span> spans() const {
    std::vector<Span> out{{0, plan_(0), 0, {}}};
    for (std::int64_t index : admitted_) {
      if (static_cast<std::int64_t>(out.back().children.size()) == size(out.back())) {
        const Span& prev = out.back();
        out.push_back({prev.number + 1, plan_(prev.number + 1), prev.before + size(prev), {}});
      }
      out.back().children.push_back(index);
    }
    if (closed_ && !out.back().children.empty())  // no child will come to fill it: it goes on as it is
      out.back().bracket.size = std::min<std::int64_t>(out.back().bracket.size,
                                                       static_cast<std::int64_t>(out.back().children.size()));
    return out;
  }
  // A bracket's size, cut to what the budget leaves.
  std::int64_t size(const Span& b) const {
    return budget_ > 0 ? std::min(b.bracket.size, std::max<std::int64_t>(0, budget_ - b.before)) : b.bracket.size;
  }
  // The bracket's rungs whose members are decided, from its first: its children once it is full;
  // then, each time every member of a rung has finished, the best max(1, n / reduction) of them.
  // The last rung listed is the one still running (or the top).
  std::vector<Rung> walk(const Span& b) const {
    std::vector<Rung> out;
    if (static_cast<std::int64_t>(b.children.size()) < size(b) || b.children.empty()) return out;
    out.push_back({b.bracket.first, b.children});
    for (;;) {
      const Rung& rung = out.back();
      if (rung.k + 1 == rungs_.size()) return out;
      Results done;
      for (std::int64_t index : rung.members) {
        auto r = finished_[rung.k].find(index);
        if (r == finished_[rung.k].end()) return out;  // the rung still runs
        done.insert(*r);
      }
      std::vector<std::int64_t> next = best(done, std::max<std::size_t>(1, rung.members.size() / static_cast<std::size_t>(reduction_)));
      if (next.empty()) return out;  // every one failed
      out.push_back({rung.k + 1, std::move(next)});
    }
  }
  // Whether a job is a child's first (not a promotion: it has no job on a rung below).
  bool first_job(const nas::Job& job) const {
    const std::size_t k = rung(job.fidelity);
    for (std::size_t below = 0; below < k; ++below)
      if (started_[below].contains(job.index)) return false;
    return true;
  }

  std::int64_t reduction_;
  std::function<Bracket(std::int64_t)> plan_;
  std::int64_t budget_;
  std::set<std::int64_t> admitted_;
  bool closed_ = false;  // no_more_children() was called
};

void register_all(nas::Registrar& r) {
  const nas::Schema ladder_schema = nas::schema_of<LadderOptions>();
  r.add<nas::Scheduler>(
      "successive_halving",
      "synchronous brackets of `children`: each rung keeps its best 1/reduction for the next, the rest stop early",
      nas::join({ladder_schema, nas::schema_of<HalvingOptions>()}),
      [](const nas::Params& p, const nas::Context&, const nas::SchedulerArgs& args) {
        const auto o = nas::options_from<LadderOptions>(p);
        const std::int64_t children = nas::options_from<HalvingOptions>(p).children;
        return std::make_unique<Brackets>(ladder(o), o.reduction,
                                          [children](std::int64_t) { return Brackets::Bracket{0, children}; },
                                          args.children);
      });
  r.add<nas::Scheduler>(
      "hyperband",
      "successive halving in brackets that start at each rung in turn (Hyperband's sizes: fewer children where they "
      "start higher)",
      ladder_schema,
      [](const nas::Params& p, const nas::Context&, const nas::SchedulerArgs& args) {
        const auto o = nas::options_from<LadderOptions>(p);
        std::vector<std::int64_t> rungs = ladder(o);
        const auto top = static_cast<std::int64_t>(rungs.size()) - 1;  // Hyperband's s_max
        auto plan = [top, eta = static_cast<double>(o.reduction)](std::int64_t b) {
          const std::int64_t s = top - b % (top + 1);  // s_max, s_max - 1, ..., 0, s_max, ...
          const auto n = static_cast<std::int64_t>(std::ceil(static_cast<double>(top + 1) * std::pow(eta, s) /
                                                             static_cast<double>(s + 1) - 1e-9));
          return Brackets::Bracket{static_cast<std::size_t>(top - s), n};
        };
        return std::make_unique<Brackets>(std::move(rungs), o.reduction, plan, args.children);
      });
  r.add<nas::Scheduler>(
      "asha", "asynchronous successive halving: promotes whenever a slot is free, never waits for a rung to fill",
      ladder_schema, [](const nas::Params& p, const nas::Context&, const nas::SchedulerArgs&) {
        const auto o = nas::options_from<LadderOptions>(p);
        return std::make_unique<Asha>(ladder(o), o.reduction);
      });
}

}  // namespace

NAS_PLUGIN("halving-schedulers", "0.1.0", register_all)
