// Kind "scheduler": multi-fidelity search. It decides at which fidelity (epochs, steps, a table's
// column: the evaluator's unit) each new child is first evaluated, and which children are taken
// further; the rest stop early. The search asks it whenever an evaluation slot is free and tells it
// every start and result, nothing else: a scheduler's state is a function of the set of jobs started
// and results known (not of their order), which is what lets a resumed search rebuild it exactly.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "nas/api.hpp"
#include "nas/kinds.hpp"

namespace nas {

/// One evaluation of a child: train (or look up) child `index` to `fidelity`. A child's first job
/// starts from scratch; each later one continues from what the child reached before.
struct Job {
  std::int64_t index = 0;
  std::int64_t fidelity = 0;
  bool operator==(const Job&) const = default;
};

class NAS_API Scheduler {
 public:
  virtual ~Scheduler();
  /// A promotion to start in a free slot, or empty. Asked before admit(); a job it returns is then
  /// reported to started(), so it is never returned twice.
  virtual std::optional<Job> promotion() = 0;
  /// The fidelity a new child starts at in a free slot, or empty: no new child now (a synchronous
  /// bracket waits for its rung to finish).
  virtual std::optional<std::int64_t> admit() = 0;
  /// A job started: a new child at what admit() said, or a promotion.
  virtual void started(const Job& job) = 0;
  /// A job's result; empty: it failed (a failed child is never promoted).
  virtual void finished(const Job& job, std::optional<double> reward) = 0;
  /// No new child will come: the search's budget of children is spent (repeats that reuse a stored
  /// result never reach the scheduler, so it cannot count them itself). A synchronous bracket still
  /// waiting to fill goes on with the children it has. A resumed search in that state calls it again.
  virtual void no_more_children() = 0;
  /// The largest fidelity any job gets (a child that reaches it has been evaluated in full).
  virtual std::int64_t max_fidelity() const = 0;
};

/// What a scheduler is made with.
struct SchedulerArgs {
  std::int64_t children = 0;  ///< new children the search will start in all (its budget); 0: unknown
};

template <>
struct KindOf<Scheduler> {
  static constexpr std::string_view name = "scheduler";
  using Args = SchedulerArgs;
  using Ptr = std::unique_ptr<Scheduler>;
};

}  // namespace nas
