#include "work_queue/work_queue.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <optional>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <c10/util/Exception.h>
#include <c10/util/Logging.h>
#include <nlohmann/json.hpp>

#include "cluster.hpp"
#include "nas/context.hpp"
#include "nas/error.hpp"
#include "nas/log.hpp"

namespace nas {
namespace {

// The protocol (docs/search.md, "Several processes: workers"). Every task is, at every moment, in
// exactly one of three states, all held by the coordinator: queued (its `pending_`), leased to one
// worker (its `leases_`, until the worker's heartbeat is older than the timeout: then queued again),
// or done (its result recorded; a second result for it is dropped). Workers never pick tasks
// themselves: the coordinator hands each one to an idle worker, so no task can be lost between a
// worker taking it and saying so. Keys of queue Q, under the cluster's prefix:
//   Q/events             workers -> coordinator: {"idle", worker} and {"result", worker, index, ...}
//   Q/assign/<worker>    coordinator -> that worker: {"task", candidate} or {"close"}
//   Q/done               set when the coordinator closes the queue (for workers it never heard of)
//   heartbeat/<worker>   Unix seconds, written every second by a thread of the worker
// Both sides block on their queue (c10d's queuePop, with a timeout for their checks): no polling.
struct Keys {
  std::string queue;
  std::string events() const { return queue + "/events"; }
  std::string assign(const std::string& worker) const { return queue + "/assign/" + worker; }
  std::string done() const { return queue + "/done"; }
};
std::string heartbeat_key(const std::string& worker) { return "heartbeat/" + worker; }

std::vector<std::uint8_t> bytes(const std::string& text) { return {text.begin(), text.end()}; }
std::string text(const std::vector<std::uint8_t>& data) { return {data.begin(), data.end()}; }

constexpr std::chrono::seconds kCheckEvery{1};  // the coordinator's lease and liveness checks

class LocalDispatch final : public Dispatch {
 public:
  explicit LocalDispatch(std::unique_ptr<Evaluator> evaluator) : evaluator_(std::move(evaluator)), worker_(worker_name()) {}
  void submit(const Candidate& candidate) override { queue_.push_back(candidate); }
  Finished next() override {
    Candidate c = std::move(queue_.front());
    queue_.pop_front();
    Finished f{c.index, {}, worker_, now_seconds(), 0};
    f.evaluation = evaluator_->evaluate(c);
    f.finished = now_seconds();
    return f;
  }
  void cancel() override { queue_.clear(); }

 private:
  std::unique_ptr<Evaluator> evaluator_;
  std::string worker_;
  std::deque<Candidate> queue_;
};

class QueueDispatch final : public Dispatch {
 public:
  QueueDispatch(const Cluster& cluster, const std::string& queue, Logger& log, const QueueTimeouts& timeouts)
      : store_(cluster.store().clone()), keys_{queue}, log_(log), timeouts_(timeouts), address_(address(cluster)),
        live_since_(std::chrono::steady_clock::now()) {
    store_->setTimeout(kCheckEvery);  // a blocking pop returns within a second for the checks
  }
  ~QueueDispatch() override {
    try {  // the workers move on, even when the stage failed
      store_->set(keys_.done(), bytes("1"));
      for (const auto& [worker, state] : workers_) store_->queuePush(keys_.assign(worker), bytes(R"({"type":"close"})"));
    } catch (const std::exception& e) {
      log_.warn("could not close the work queue '{}': {}", keys_.queue, e.what());
    }
  }

  void submit(const Candidate& candidate) override {
    pending_.push_back({candidate.index, to_json(candidate).dump()});
    in_flight_.insert(candidate.index);
    assign();
  }

  Finished next() override {
    for (auto last_check = std::chrono::steady_clock::now();;) {
      if (std::optional<nlohmann::json> event = pop_event())
        if (std::optional<Finished> f = handle(*event)) return *f;
      if (std::chrono::steady_clock::now() - last_check >= kCheckEvery) {
        check_workers();
        last_check = std::chrono::steady_clock::now();
      }
    }
  }

  void cancel() override {
    in_flight_.clear();
    pending_.clear();  // leased ones finish; their results are dropped
  }

 private:
  struct Task {
    std::int64_t index;
    std::string json;
  };
  struct Worker {
    bool idle = false;
    bool lost = false;  // no heartbeat for the timeout: it gets nothing until it speaks again
  };

  static std::string address(const Cluster& cluster) {
    return fmt::format("{}:{}", cluster.world().master_addr, cluster.port());
  }

  std::optional<nlohmann::json> pop_event() {
    try {
      return nlohmann::json::parse(text(store_->queuePop(keys_.events(), false)));
    } catch (const c10::DistNetworkError&) {
      throw;
    } catch (const c10::DistStoreError&) {
      return std::nullopt;  // nothing within a second
    }
  }

  // A worker's message; a result for a task still in flight is what next() returns.
  std::optional<Finished> handle(const nlohmann::json& event) {
    const std::string worker = event.at("worker");
    Worker& w = workers_[worker];
    w.idle = true;
    if (w.lost) log_.info("worker {} is back", worker);
    w.lost = false;
    live_since_ = std::chrono::steady_clock::now();
    std::optional<Finished> finished;
    if (event.at("type") == "result") {
      const std::int64_t index = event.at("index");
      if (auto lease = leases_.find(index); lease != leases_.end() && lease->second.worker == worker) leases_.erase(lease);
      if (in_flight_.erase(index))  // the first result counts: a task handed out twice, or cancelled, is not returned again
        finished = Finished{index, evaluation_from_json(event.at("evaluation")), worker, event.at("started"),
                            event.at("finished")};
    }
    assign();
    return finished;
  }

  // Hands queued tasks to idle workers, one each.
  void assign() {
    for (auto& [worker, w] : workers_) {
      if (pending_.empty()) return;
      if (!w.idle || w.lost) continue;
      Task task = std::move(pending_.front());
      pending_.pop_front();
      if (!in_flight_.count(task.index)) continue;  // cancelled
      store_->queuePush(keys_.assign(worker), bytes(nlohmann::json{{"type", "task"}, {"task", task.json}}.dump()));
      leases_[task.index] = {worker, std::move(task)};
      w.idle = false;
    }
  }

  // Leases of workers whose heartbeat is too old go back to the queue; without any live worker for
  // no_worker_timeout, the stage stops (its store stays consistent: --resume continues).
  void check_workers() {
    if (workers_.empty() && pending_.empty()) return;
    std::vector<std::string> names, keys;
    for (const auto& [worker, w] : workers_) {
      names.push_back(worker);
      keys.push_back(heartbeat_key(worker));
    }
    const double now = now_seconds();
    bool any_live = false;
    for (std::size_t i = 0; i < names.size(); ++i) {
      const double beat = store_->check({keys[i]}) ? std::stod(text(store_->get(keys[i]))) : 0.0;
      Worker& w = workers_[names[i]];
      if (now - beat <= timeouts_.heartbeat) {
        any_live = true;
        continue;
      }
      if (!w.lost) log_.warn("worker {} sent no heartbeat for {:.0f} s", names[i], now - beat);
      w.lost = true;
      w.idle = false;
      for (auto it = leases_.begin(); it != leases_.end();) {
        if (it->second.worker != names[i]) {
          ++it;
          continue;
        }
        log_.warn("evaluation #{} goes to another worker", it->first);
        pending_.push_front(std::move(it->second.task));
        it = leases_.erase(it);
      }
    }
    if (any_live) live_since_ = std::chrono::steady_clock::now();
    assign();
    const double alone = std::chrono::duration<double>(std::chrono::steady_clock::now() - live_since_).count();
    if (alone > timeouts_.no_worker && !in_flight_.empty())
      throw Error(fmt::format("work queue '{}': no live worker for {:.0f} s (no_worker_timeout), with {} evaluations "
                              "waiting; what is stored is consistent: start workers and continue with 'nas-host run "
                              "--resume RUN_DIR' (store on {})",
                              keys_.queue, alone, in_flight_.size(), address_));
  }

  struct Lease {
    std::string worker;
    Task task;
  };

  c10::intrusive_ptr<c10d::Store> store_;  // its own connection, with a one-second timeout
  Keys keys_;
  Logger& log_;
  QueueTimeouts timeouts_;
  std::string address_;
  std::map<std::string, Worker> workers_;
  std::deque<Task> pending_;
  std::map<std::int64_t, Lease> leases_;
  std::set<std::int64_t> in_flight_;  // submitted, no result returned yet
  std::chrono::steady_clock::time_point live_since_;
};

}  // namespace

nlohmann::json to_json(const Candidate& c) {
  return {{"index", c.index}, {"decisions", c.decisions}, {"genotype", c.genotype}, {"hash", c.hash}};
}

Candidate candidate_from_json(const nlohmann::json& j) {
  return Candidate{j.at("index"), j.at("decisions").get<std::vector<std::int64_t>>(), j.at("genotype"), j.at("hash")};
}

nlohmann::json to_json(const Evaluation& e) {
  return {{"reward", e.reward ? nlohmann::json(*e.reward) : nlohmann::json()},
          {"final_score", e.final_score ? nlohmann::json(*e.final_score) : nlohmann::json()},
          {"failure", e.failure},
          {"metrics", e.metrics}};
}

Evaluation evaluation_from_json(const nlohmann::json& j) {
  Evaluation e;
  if (!j.at("reward").is_null()) e.reward = j["reward"].get<double>();
  if (!j.at("final_score").is_null()) e.final_score = j["final_score"].get<double>();
  e.failure = j.at("failure");
  e.metrics = j.at("metrics").get<std::map<std::string, double>>();
  return e;
}

std::string worker_name() { return fmt::format("{}:{}", host_name(), getpid()); }

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::unique_ptr<Dispatch> make_dispatch(const Cluster* cluster, Logger& log, const std::string& queue,
                                        const QueueTimeouts& timeouts,
                                        const std::function<std::unique_ptr<Evaluator>()>& make_evaluator) {
  if (cluster && cluster->world().size > 1) return std::make_unique<QueueDispatch>(*cluster, queue, log, timeouts);
  return std::make_unique<LocalDispatch>(make_evaluator());
}

void serve(const Cluster& cluster, const std::string& queue, Evaluator& evaluator, Logger& log) {
  const Keys keys{queue};
  const std::string name = worker_name();
  const std::string coordinator = fmt::format("{}:{}", cluster.world().master_addr, cluster.world().master_port);
  // c10d warns with a stack trace when its connection breaks; this worker says it in one line instead.
  FLAGS_caffe2_log_level = std::max(FLAGS_caffe2_log_level, 2);  // errors only
  auto store = cluster.store().clone();  // its own connection: a blocking pop returns every 2 s for the checks
  store->setTimeout(std::chrono::seconds(2));
  std::atomic<bool> stop{false};
  // The heartbeat: a thread of its own, so a long evaluation does not look like a dead worker.
  std::thread heartbeat([&] {
    try {
      auto beats = cluster.store().clone();
      while (!stop) {
        beats->set(heartbeat_key(name), bytes(fmt::format("{}", now_seconds())));
        for (int i = 0; i < 10 && !stop; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    } catch (const std::exception&) {
      // The coordinator is gone: the main loop finds out at its next request and says so.
    }
  });
  struct Join {
    std::atomic<bool>& stop;
    std::thread& thread;
    ~Join() {
      stop = true;
      thread.join();
    }
  } join{stop, heartbeat};
  std::int64_t evaluated = 0;
  try {
    store->queuePush(keys.events(), bytes(nlohmann::json{{"type", "idle"}, {"worker", name}}.dump()));
    for (;;) {
      std::vector<std::uint8_t> message;
      try {
        message = store->queuePop(keys.assign(name), false);
      } catch (const c10::DistNetworkError&) {
        throw;
      } catch (const c10::DistStoreError&) {
        if (store->check({keys.done()})) break;  // closed before it knew this worker
        continue;
      }
      const nlohmann::json m = nlohmann::json::parse(text(message));
      if (m.at("type") == "close") break;
      const Candidate c = candidate_from_json(nlohmann::json::parse(m.at("task").get<std::string>()));
      const double started = now_seconds();
      const Evaluation e = evaluator.evaluate(c);
      store->queuePush(keys.events(), bytes(nlohmann::json{{"type", "result"}, {"worker", name}, {"index", c.index},
                                                           {"started", started}, {"finished", now_seconds()},
                                                           {"evaluation", to_json(e)}}.dump()));
      ++evaluated;
    }
  } catch (const c10::DistError& e) {
    const std::string what = e.what_without_backtrace();
    throw Error(fmt::format("worker {}: lost the coordinator at {} ({}); this worker stops. What the run stored is "
                            "kept: 'nas-host run --resume RUN_DIR' continues it", name, coordinator,
                            what.substr(0, what.find('\n'))));
  }
  log.info("worker {}: queue '{}' closed; {} evaluations done here", name, queue, evaluated);
}

}  // namespace nas
