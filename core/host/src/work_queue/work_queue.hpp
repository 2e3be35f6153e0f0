// The work queue: where the candidates of a stage (search, retrain) are evaluated. In this process,
// one after another, or by worker processes that pull them from the cluster's c10d queue and hand
// back results the same way. The stages see only Dispatch; its protocol lives in work_queue.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

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

struct QueueTimeouts {
  double heartbeat = 30;   ///< seconds without a worker's heartbeat before its task goes to another
  double no_worker = 300;  ///< seconds without any live worker before the stage stops (Error)
};

/// A stage's dispatch. With worker processes (a cluster of more than one rank): the cluster's
/// queue named `queue` (one per stage, e.g. "search"; protocol in work_queue.cpp), which hands a
/// candidate to another worker when the one running it has sent no heartbeat for
/// `timeouts.heartbeat` seconds, throws Error from next() after `timeouts.no_worker` seconds without
/// a live worker, and is closed for the workers when the dispatch goes away, whatever happened.
/// Else: `make_evaluator()` in this process, evaluating in submission order when next() is called.
std::unique_ptr<Dispatch> make_dispatch(const Cluster* cluster, Logger& log, const std::string& queue,
                                        const QueueTimeouts& timeouts,
                                        const std::function<std::unique_ptr<Evaluator>()>& make_evaluator);

/// A worker: evaluates candidates from `queue` until the coordinator says it is closed; throws Error
/// naming the coordinator's address when it is gone.
void serve(const Cluster& cluster, const std::string& queue, Evaluator& evaluator, Logger& log);

/// Candidates and evaluations as JSON, the one wire format between processes (the work queue, the
/// channel to an evaluator process).
nlohmann::json to_json(const Candidate& candidate);
Candidate candidate_from_json(const nlohmann::json& json);
nlohmann::json to_json(const Evaluation& evaluation);
Evaluation evaluation_from_json(const nlohmann::json& json);

std::string worker_name();
double now_seconds();

}  // namespace nas
