// Where a search's candidates are evaluated: in this process, one after another, or by worker
// processes that pull them from the cluster's c10d queue (and hand back results the same way).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "nas/evaluator.hpp"

namespace nas {

class Cluster;
class Logger;

struct Finished {
  std::int64_t index = 0;
  Evaluation evaluation;
  std::string worker;  ///< host:pid
  double started = 0, finished = 0;  ///< Unix seconds
};

class Dispatch {
 public:
  virtual ~Dispatch() = default;
  virtual void submit(const Candidate& candidate) = 0;
  /// The next finished evaluation, in any order; blocks. Only after a submit that has not finished.
  virtual Finished next() = 0;
  /// Forgets every submitted candidate that has not finished (the budget ran out).
  virtual void cancel() = 0;
};

/// Evaluates in this process, in submission order, when next() is called.
std::unique_ptr<Dispatch> local_dispatch(Evaluator& evaluator);

/// Pushes candidates to the cluster's queue named `queue` (one per stage, e.g. "search"); hands a
/// candidate to another worker when the worker running it has sent no heartbeat for `heartbeat_timeout` s.
std::unique_ptr<Dispatch> queue_dispatch(const Cluster& cluster, const std::string& queue, Logger& log,
                                         double heartbeat_timeout);

/// A worker: evaluates candidates from `queue` until the coordinator says it is closed.
void serve(const Cluster& cluster, const std::string& queue, Evaluator& evaluator, Logger& log);
/// The coordinator: closes `queue`; its workers move on.
void finish_serving(const Cluster& cluster, const std::string& queue);

std::string worker_name();
double now_seconds();

}  // namespace nas
