#include "work_queue/work_queue.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cluster.hpp"
#include "nas/context.hpp"
#include "nas/log.hpp"

namespace nas {
namespace {

// Keys of queue Q (under the cluster's prefix): the queues "Q/tasks" (candidates as JSON) and
// "Q/results" (indices), "Q/result/<index>", "Q/running/<index>" (who runs it), "Q/done"; and
// "heartbeat/<worker>" (Unix seconds).
struct Keys {
  std::string queue;
  std::string tasks() const { return queue + "/tasks"; }
  std::string results() const { return queue + "/results"; }
  std::string done() const { return queue + "/done"; }
  std::string result(std::int64_t index) const { return fmt::format("{}/result/{}", queue, index); }
  std::string running(std::int64_t index) const { return fmt::format("{}/running/{}", queue, index); }
};
std::string heartbeat_key(const std::string& worker) { return "heartbeat/" + worker; }

std::vector<std::uint8_t> bytes(const std::string& text) { return {text.begin(), text.end()}; }
std::string text(const std::vector<std::uint8_t>& data) { return {data.begin(), data.end()}; }

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
  QueueDispatch(const Cluster& cluster, const std::string& queue, Logger& log, double timeout)
      : store_(cluster.store()), keys_{queue}, log_(log), timeout_(timeout) {}
  ~QueueDispatch() override {
    try {
      store_.set(keys_.done(), bytes("1"));  // the workers move on, even when the stage failed
    } catch (const std::exception& e) {
      log_.warn("could not close the work queue '{}': {}", keys_.queue, e.what());
    }
  }

  void submit(const Candidate& candidate) override {
    const std::string task = to_json(candidate).dump();
    in_flight_[candidate.index] = task;
    store_.queuePush(keys_.tasks(), bytes(task));
  }

  Finished next() override {
    for (auto last_check = std::chrono::steady_clock::now();;) {
      if (store_.queueLen(keys_.results()) > 0) {
        const auto index = std::stoll(text(store_.queuePop(keys_.results(), false)));
        auto in_flight = in_flight_.find(index);
        nlohmann::json r = nlohmann::json::parse(text(store_.get(keys_.result(index))));
        store_.deleteKey(keys_.result(index));
        store_.deleteKey(keys_.running(index));
        if (in_flight == in_flight_.end()) continue;  // handed out twice, or cancelled: the first result counts
        in_flight_.erase(in_flight);
        return Finished{index, evaluation_from_json(r["evaluation"]), r["worker"], r["started"], r["finished"]};
      }
      if (std::chrono::steady_clock::now() - last_check > std::chrono::seconds(1)) {
        requeue_lost();
        last_check = std::chrono::steady_clock::now();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  void cancel() override { in_flight_.clear(); }

 private:
  // A candidate whose worker stopped sending heartbeats goes back in the queue for another worker.
  void requeue_lost() {
    const double now = now_seconds();
    for (const auto& [index, task] : in_flight_) {
      if (!store_.check({keys_.running(index)})) continue;  // still queued
      const std::string worker = text(store_.get(keys_.running(index)));
      const double beat = store_.check({heartbeat_key(worker)}) ? std::stod(text(store_.get(heartbeat_key(worker)))) : 0.0;
      if (now - beat <= timeout_) continue;
      log_.warn("worker {} sent no heartbeat for {:.0f} s; evaluation #{} goes to another worker", worker, now - beat, index);
      store_.deleteKey(keys_.running(index));
      store_.queuePush(keys_.tasks(), bytes(task));
    }
  }

  c10d::Store& store_;
  Keys keys_;
  Logger& log_;
  double timeout_;
  std::map<std::int64_t, std::string> in_flight_;  // index -> task
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
                                        double heartbeat_timeout,
                                        const std::function<std::unique_ptr<Evaluator>()>& make_evaluator) {
  if (cluster && cluster->world().size > 1) return std::make_unique<QueueDispatch>(*cluster, queue, log, heartbeat_timeout);
  return std::make_unique<LocalDispatch>(make_evaluator());
}

void serve(const Cluster& cluster, const std::string& queue, Evaluator& evaluator, Logger& log) {
  c10d::Store& store = cluster.store();
  const Keys keys{queue};
  const std::string name = worker_name();
  std::atomic<bool> stop{false};
  // The heartbeat: a thread of its own, so a long evaluation does not look like a dead worker.
  std::thread heartbeat([&] {
    auto beats = cluster.store().clone();  // its own connection: stores are not shared across threads
    while (!stop) {
      beats->set(heartbeat_key(name), bytes(fmt::format("{}", now_seconds())));
      for (int i = 0; i < 10 && !stop; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  std::int64_t evaluated = 0;
  try {
    while (!store.check({keys.done()})) {
      if (store.queueLen(keys.tasks()) == 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      std::vector<std::uint8_t> task;
      try {
        task = store.queuePop(keys.tasks(), false);
      } catch (const std::exception&) {
        continue;  // another worker took it first
      }
      const Candidate c = candidate_from_json(nlohmann::json::parse(text(task)));
      store.set(keys.running(c.index), bytes(name));
      const double started = now_seconds();
      const Evaluation e = evaluator.evaluate(c);
      const nlohmann::json r{{"worker", name}, {"started", started}, {"finished", now_seconds()}, {"evaluation", to_json(e)}};
      store.set(keys.result(c.index), bytes(r.dump()));
      store.queuePush(keys.results(), bytes(std::to_string(c.index)));
      ++evaluated;
    }
  } catch (...) {
    stop = true;
    heartbeat.join();
    throw;
  }
  stop = true;
  heartbeat.join();
  log.info("worker {}: queue '{}' closed; {} evaluations done here", name, queue, evaluated);
}

}  // namespace nas
