#include "work_queue/work_queue.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <set>
#include <thread>

#include <c10/util/Exception.h>
#include <c10/util/Logging.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cluster.hpp"
#include "nas/context.hpp"
#include "nas/error.hpp"
#include "nas/log.hpp"
#include "work_queue/mailbox.hpp"

namespace nas {
namespace {

// The protocol (docs/search.md, "Several processes: workers"). Every task is, at every moment, in
// exactly one of three states, all held by the coordinator: queued (its `pending_`), leased to one
// worker (its `leases_`, until the worker's heartbeat is older than the timeout: then queued again),
// or done (its result recorded; a second result for it is dropped). Workers never pick tasks
// themselves: the coordinator hands each one to an idle worker, so no task can be lost between a
// worker taking it and saying so. Keys of queue Q, under the cluster's prefix:
//   Q/events             mailbox, workers -> coordinator: {"idle", worker} and {"result", worker, index, fidelity, ...}
//   Q/assign/<worker>    mailbox, coordinator -> that worker: {"task", candidate} or {"close"}
//   Q/done               set when the coordinator closes the queue (for workers it never heard of)
//   heartbeat/<worker>   Unix seconds, written every second by a thread of the worker
// Both sides block on their mailbox; a thread of each rings it now and then (the coordinator's each
// second, for its checks; a worker's every half minute, so no wait reaches the store's timeout).
struct Keys {
  std::string queue;
  std::string events() const { return queue + "/events"; }
  std::string assign(const std::string& worker) const { return queue + "/assign/" + worker; }
  std::string done() const { return queue + "/done"; }
};
std::string heartbeat_key(const std::string& worker) { return "heartbeat/" + worker; }

std::vector<std::uint8_t> bytes(const std::string& text) { return {text.begin(), text.end()}; }
std::string text(const std::vector<std::uint8_t>& data) { return {data.begin(), data.end()}; }

constexpr std::chrono::seconds kCheckEvery{1};   // the coordinator's lease and liveness checks
constexpr std::chrono::seconds kBeatEvery{1};    // a worker's heartbeat
constexpr int kWorkerRingEvery = 30;             // heartbeats between a worker's own wake-ups

// Calls `tick` every `period` from a thread of its own until destroyed; `tick` gets the thread's
// own connection to the store (c10d stores are not shared across threads).
class Ticker {
 public:
  Ticker(const Cluster& cluster, std::chrono::milliseconds period, std::function<void(c10d::Store&)> tick)
      : thread_([this, store = cluster.connect(), period, tick = std::move(tick)] {
          while (!stop_) {
            tick(*store);
            for (auto slept = std::chrono::milliseconds(0); slept < period && !stop_; slept += std::chrono::milliseconds(50))
              std::this_thread::sleep_for(std::chrono::milliseconds(50));
          }
        }) {}
  ~Ticker() {
    stop_ = true;
    thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

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
      : store_(cluster.store()), keys_{queue}, events_(store_, keys_.events()), log_(log), timeouts_(timeouts),
        address_(fmt::format("{}:{}", cluster.world().master_addr, cluster.port())),
        started_(std::chrono::steady_clock::now()), live_since_(started_), requests_at_start_(queue_requests()),
        ticker_(cluster, kCheckEvery, [name = keys_.events()](c10d::Store& store) {
          try {
            Mailbox(store, name).ring();
          } catch (const std::exception&) {
            // The store is gone: the coordinator's own next request says so.
          }
        }) {}

  ~QueueDispatch() override {
    try {  // the workers move on, even when the stage failed
      store_.set(keys_.done(), bytes("1"));
      count_queue_requests(1);
      for (const std::string& message : events_.waiting()) handle(nlohmann::json::parse(message));  // who spoke up just now
      for (const auto& [worker, state] : workers_) Mailbox(store_, keys_.assign(worker)).post(R"({"type":"close"})");
      log_summary();
    } catch (const std::exception& e) {
      log_.warn("could not close the work queue '{}': {}", keys_.queue, e.what());
    }
  }

  void submit(const Candidate& candidate) override {
    pending_.push_back({{candidate.index, candidate.fidelity}, to_json(candidate).dump()});
    in_flight_.insert({candidate.index, candidate.fidelity});
    assign();
  }

  Finished next() override {
    for (auto last_check = std::chrono::steady_clock::now(); ready_.empty();) {
      for (const std::string& message : events_.take()) handle(nlohmann::json::parse(message));
      if (std::chrono::steady_clock::now() - last_check >= kCheckEvery) {
        check_workers();
        last_check = std::chrono::steady_clock::now();
      }
    }
    Finished f = std::move(ready_.front());
    ready_.pop_front();
    return f;
  }

  void cancel() override {
    in_flight_.clear();
    pending_.clear();  // leased ones finish; their results are dropped
    ready_.clear();
  }

 private:
  // A task is a candidate at a fidelity: a child promoted to a higher one is another task, and a
  // late result of its earlier one (a lease handed out twice) must not pass for the new one's.
  using TaskId = std::pair<std::int64_t, std::int64_t>;  // index, fidelity
  struct Task {
    TaskId id;
    std::string json;
  };
  struct Lease {
    std::string worker;
    Task task;
  };
  struct Worker {
    bool idle = false;
    bool lost = false;  // no heartbeat for the timeout: it gets nothing until it beats again
    std::int64_t requests = 0;  // its store requests for this queue, as it last said
  };

  // A worker's message; a result for a task still in flight is queued for next().
  void handle(const nlohmann::json& event) {
    const std::string worker = event.at("worker");
    Worker& w = workers_[worker];
    w.idle = true;
    w.requests = event.value("requests", w.requests);
    live_since_ = std::chrono::steady_clock::now();
    if (event.at("type") == "result") {
      const TaskId id{event.at("index"), event.at("fidelity")};
      ++results_;
      if (auto lease = leases_.find(id); lease != leases_.end() && lease->second.worker == worker) leases_.erase(lease);
      if (in_flight_.erase(id))  // the first result counts: a task handed out twice, or cancelled, is not returned again
        ready_.push_back(Finished{id.first, evaluation_from_json(event.at("evaluation")), worker, event.at("started"),
                                  event.at("finished")});
    }
    assign();
  }

  // Hands queued tasks to idle workers, one each.
  void assign() {
    for (auto& [worker, w] : workers_) {
      while (!pending_.empty() && !in_flight_.count(pending_.front().id)) pending_.pop_front();  // cancelled
      if (pending_.empty()) return;
      if (!w.idle || w.lost) continue;
      Task task = std::move(pending_.front());
      pending_.pop_front();
      Mailbox(store_, keys_.assign(worker)).post(nlohmann::json{{"type", "task"}, {"task", task.json}}.dump());
      leases_[task.id] = {worker, std::move(task)};
      w.idle = false;
    }
  }

  // Leases of workers whose heartbeat is too old go back to the queue; without any live worker for
  // no_worker_timeout, the stage stops (its store stays consistent: --resume continues).
  void check_workers() {
    std::vector<std::string> names, keys;
    for (const auto& [worker, w] : workers_) {
      names.push_back(worker);
      keys.push_back(heartbeat_key(worker));
    }
    bool any_live = false;
    if (!keys.empty()) {
      const auto beats = store_.multiGet(keys);  // every key exists: a worker beats before it speaks
      count_queue_requests(1);
      const double now = now_seconds();
      for (std::size_t i = 0; i < names.size(); ++i) {
        const double silent = now - std::stod(text(beats[i]));
        Worker& w = workers_[names[i]];
        if (silent <= timeouts_.heartbeat) {
          if (w.lost) log_.info("worker {} is back", names[i]);
          w.lost = false;
          any_live = true;
          continue;
        }
        if (!w.lost) log_.warn("worker {} sent no heartbeat for {:.0f} s", names[i], silent);
        w.lost = true;
        requeue_leases_of(names[i]);
      }
    }
    if (any_live) live_since_ = std::chrono::steady_clock::now();
    assign();
    const double alone = seconds_since(live_since_);
    if (alone > timeouts_.no_worker && !in_flight_.empty())
      throw Error(fmt::format("work queue '{}': no live worker for {:.0f} s (no_worker_timeout), with {} evaluations "
                              "waiting; what is stored is consistent: start workers and continue with 'nas-host run "
                              "--resume RUN_DIR' (store on {})",
                              keys_.queue, alone, in_flight_.size(), address_));
  }

  void requeue_leases_of(const std::string& worker) {
    for (auto it = leases_.begin(); it != leases_.end();) {
      if (it->second.worker != worker) {
        ++it;
        continue;
      }
      if (in_flight_.count(it->first)) log_.warn("evaluation #{} goes to another worker", it->first.first);
      pending_.push_front(std::move(it->second.task));
      it = leases_.erase(it);
    }
  }

  // One line on what the queue cost (bench/queue_scale.py reads it).
  void log_summary() const {
    const double seconds = seconds_since(started_);
    std::int64_t by_workers = 0;
    for (const auto& [worker, w] : workers_) by_workers += w.requests;
    log_.info("work queue '{}' closed: {} results from {} workers in {:.1f} s; store requests per second: {:.1f} by "
              "the coordinator, {:.1f} by the workers",
              keys_.queue, results_, workers_.size(), seconds, (queue_requests() - requests_at_start_) / seconds,
              by_workers / seconds);
  }

  static double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  }

  c10d::Store& store_;
  Keys keys_;
  Mailbox events_;
  Logger& log_;
  QueueTimeouts timeouts_;
  std::string address_;
  std::chrono::steady_clock::time_point started_, live_since_;
  std::int64_t requests_at_start_;
  std::int64_t results_ = 0;
  std::map<std::string, Worker> workers_;
  std::deque<Task> pending_;
  std::map<TaskId, Lease> leases_;
  std::set<TaskId> in_flight_;        // submitted, no result returned yet
  std::deque<Finished> ready_;        // results for next() to return
  Ticker ticker_;                     // last: it rings events_ from its own thread
};

// A worker without its coordinator has nothing left to do: whatever it is evaluating is lost anyway
// (the coordinator re-runs that task after --resume). It says so in one line and leaves at once,
// from whichever thread found out, even in the middle of a long evaluation.
[[noreturn]] void stop_without_coordinator(Logger& log, const std::string& worker, const std::string& coordinator,
                                           const c10::DistError& e) {
  static std::once_flag once;
  std::call_once(once, [&] {
    const std::string what = e.what_without_backtrace();
    log.error("worker {}: lost the coordinator at {} ({}); this worker stops. What the run stored is kept: 'nas-host "
              "run --resume RUN_DIR' continues it", worker, coordinator, what.substr(0, what.find('\n')));
  });
  std::_Exit(1);
}

}  // namespace

nlohmann::json to_json(const Candidate& c) {
  return {{"index", c.index}, {"decisions", c.decisions}, {"genotype", c.genotype}, {"hash", c.hash},
          {"fidelity", c.fidelity}};
}

Candidate candidate_from_json(const nlohmann::json& j) {
  return Candidate{j.at("index"), j.at("decisions").get<std::vector<std::int64_t>>(), j.at("genotype"), j.at("hash"),
                   j.at("fidelity")};
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
  const std::int64_t requests_at_start = queue_requests();
  auto requests = [&] { return queue_requests() - requests_at_start; };
  std::int64_t evaluated = 0;
  try {
    c10d::Store& store = cluster.store();
    Mailbox events(store, keys.events()), inbox(store, keys.assign(name));
    store.set(heartbeat_key(name), bytes(fmt::format("{}", now_seconds())));  // before it speaks: the coordinator reads it
    count_queue_requests(1);
    // The heartbeat: a thread of its own, so a long evaluation does not look like a dead worker.
    Ticker heartbeat(cluster, kBeatEvery, [&, beats = 0](c10d::Store& own) mutable {
      try {
        own.set(heartbeat_key(name), bytes(fmt::format("{}", now_seconds())));
        count_queue_requests(1);
        if (++beats % kWorkerRingEvery == 0) Mailbox(own, keys.assign(name)).ring();
      } catch (const c10::DistError& e) {
        stop_without_coordinator(log, name, coordinator, e);
      }
    });
    events.post(nlohmann::json{{"type", "idle"}, {"worker", name}, {"requests", requests()}}.dump());
    count_queue_requests(1);  // the check below
    if (store.check({keys.done()})) {  // closed before it heard of this worker; else it will say close
      log.info("worker {}: queue '{}' was closed already", name, queue);
      return;
    }
    for (bool closed = false; !closed;) {
      const std::vector<std::string> messages = inbox.take();
      for (const std::string& message : messages) closed |= nlohmann::json::parse(message).at("type") == "close";
      for (std::size_t i = 0; i < messages.size() && !closed; ++i) {
        const nlohmann::json m = nlohmann::json::parse(messages[i]);
        const Candidate c = candidate_from_json(nlohmann::json::parse(m.at("task").get<std::string>()));
        const double started = now_seconds();
        const Evaluation e = evaluator.evaluate(c);
        events.post(nlohmann::json{{"type", "result"}, {"worker", name}, {"index", c.index}, {"fidelity", c.fidelity},
                                   {"started", started},
                                   {"finished", now_seconds()}, {"evaluation", to_json(e)},
                                   {"requests", requests()}}.dump());
        ++evaluated;
      }
    }
  } catch (const c10::DistError& e) {
    stop_without_coordinator(log, name, coordinator, e);
  }
  log.info("worker {}: queue '{}' closed; {} evaluations done here", name, queue, evaluated);
}

}  // namespace nas
