// The search's store: one SQLite file (WAL mode) in the run directory with one row per proposed
// architecture and the controller's latest snapshot. Every change is one transaction, so a process
// killed at any moment leaves a consistent store that `nas-host run --resume` continues from.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nas/api.hpp"
#include "nas/scheduler.hpp"

namespace nas {

struct Evaluation;
struct Job;

/// Where a proposed architecture stands.
enum class EvaluationStatus {
  pending,    ///< proposed, not evaluated yet
  ok,         ///< evaluated; has a reward
  failed,     ///< evaluated; no reward, a failure reason
  reused,     ///< an architecture with the same hash was evaluated before; its result was copied
  cancelled,  ///< proposed, then the budget ran out before it was evaluated
};
NAS_API std::string_view to_string(EvaluationStatus status);

struct StoredEvaluation {
  std::int64_t index = 0;                ///< proposal order, from 0
  std::int64_t round = 0;                ///< the controller's step when it was proposed (observe() calls before)
  std::string space;                     ///< the space plugin's key
  std::string hash;
  std::string genotype;
  std::vector<std::int64_t> decisions;
  std::string memo;                      ///< the controller's, handed back when it observes the result
  EvaluationStatus status = EvaluationStatus::pending;
  std::optional<double> reward;          ///< the evaluator's, before any reward transform
  std::optional<double> final_score;
  std::map<std::string, double> metrics;
  std::string failure;
  std::optional<std::int64_t> reused_from;
  std::string worker;                    ///< who evaluated it (host:pid)
  double proposed_at = 0, started_at = 0, finished_at = 0;  ///< seconds since the epoch; 0: not yet
  std::optional<std::int64_t> observed;  ///< the controller's step that learned from it (1: the first observe() call)
  /// Multi-fidelity search: `reward` and the rest above are the child's first evaluation (what the
  /// controller learns from); these, its highest fidelity reached (of a job that finished ok) and the
  /// reward there. Without a scheduler: 0 and `reward`.
  std::int64_t fidelity = 0;
  std::optional<double> reward_reached;
};

/// One job of a child (its first evaluation, or a promotion to a higher fidelity).
struct StoredJob {
  Job job;
  EvaluationStatus status = EvaluationStatus::pending;  ///< pending, ok, failed or cancelled
  std::optional<double> reward;
  std::optional<double> final_score;
  std::string failure;
  std::string worker;
  double dispatched_at = 0;  ///< when the search handed it out (the scheduler's decision)
  double started_at = 0, finished_at = 0;  ///< when the evaluator began and ended it; 0: not yet
};

class NAS_API SearchStore {
 public:
  enum class Access {
    write,  ///< the search's: creates the file and its tables if needed
    read,   ///< a reader's (reports): the file must exist; writes nothing, not even a checkpoint on close
  };
  /// Opens `file`. Throws Error naming the file if it is not a search store (or, to read, does not exist).
  explicit SearchStore(const std::filesystem::path& file, Access access = Access::write);
  ~SearchStore();
  SearchStore(const SearchStore&) = delete;
  SearchStore& operator=(const SearchStore&) = delete;

  const std::filesystem::path& file() const { return file_; }

  /// Adds pending rows (their index must continue the table's). One transaction.
  void add_proposals(const std::vector<StoredEvaluation>& rows);
  /// Marks a pending row ok or failed with its evaluation.
  void record_result(std::int64_t index, const Evaluation& evaluation, std::string_view worker, double started_at,
                     double finished_at);
  /// A job dispatched at time `at`: pending until record_job.
  void start_job(const Job& job, double at);
  /// A pending job's result and, when it is its child's first (the row is pending), the row's: one
  /// transaction. Returns whether it was the child's first.
  bool record_job(const Job& job, const Evaluation& evaluation, std::string_view worker, double started_at,
                  double finished_at);
  /// Every job, by index and fidelity.
  std::vector<StoredJob> jobs() const;
  /// Marks a pending row, at time `at`, as a copy of the finished row `from`.
  void record_reuse(std::int64_t index, std::int64_t from, double at);
  /// Marks finished rows as learned from by the controller's observe() call number `step`, and
  /// records what the controller reported of that call (Controller::learning_signals). One transaction.
  void record_observed(const std::vector<std::int64_t>& indices, std::int64_t step,
                       const std::map<std::string, double>& signals = {});
  /// Marks every pending row and job cancelled.
  void cancel_pending();

  std::vector<StoredEvaluation> evaluations() const;
  /// The row `index`; throws Error if there is none.
  StoredEvaluation evaluation(std::int64_t index) const;
  /// The `k` best ok rows, one per hash: by the fidelity reached, then by the reward there (the first
  /// evaluated of equal rewards first).
  std::vector<StoredEvaluation> best(std::int64_t k) const;
  /// The first ok or failed row with this hash.
  std::optional<StoredEvaluation> first_evaluated(std::string_view hash) const;

  struct Signal {
    std::int64_t step = 0;  ///< the observe() call (from 1)
    std::string name;
    double value = 0;
  };
  /// Every learning signal recorded, by step and name.
  std::vector<Signal> signals() const;

  struct Snapshot {
    std::int64_t round = 0;  ///< the controller's step: its state after this many observe() calls
    std::string state;
  };
  /// Replaces the previous snapshot (states can be megabytes; only the latest is needed to resume).
  void save_snapshot(const Snapshot& snapshot);
  std::optional<Snapshot> latest_snapshot() const;

  /// Small key-value facts about the search (e.g. seconds spent before a resume).
  std::optional<std::string> meta(std::string_view key) const;
  void set_meta(std::string_view key, std::string_view value);

 private:
  struct Db;
  std::filesystem::path file_;
  std::unique_ptr<Db> db_;
};

}  // namespace nas
