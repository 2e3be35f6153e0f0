// A search with 3 workers under a seeded schedule of SIGKILLs, of workers and of the coordinator, each
// restarted as a user would (a worker: the same nas-host command with its rank's variables; the
// coordinator: nas-host run --resume). What must hold at the end: every proposal exactly once, every
// evaluation that had finished before a kill kept as it was, and (sync schedule) the same store as
// an uninterrupted run.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <random>
#include <regex>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "nas/store.hpp"
#include "support.hpp"

namespace fs = std::filesystem;

namespace {

constexpr int kWorkers = 3;

std::size_t count_of(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (std::size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

class ChaosTest : public ::testing::Test {
 protected:
  std::vector<nas::StoredEvaluation> rows(const std::string& run) {
    const fs::path store = dir_ / run / "search.sqlite";
    return fs::exists(store) ? nas::SearchStore(store).evaluations() : std::vector<nas::StoredEvaluation>{};
  }
  static bool finished(const nas::StoredEvaluation& e) {
    return e.status != nas::EvaluationStatus::pending && e.status != nas::EvaluationStatus::cancelled;
  }

  // The port the current coordinator serves the store on: its last "store on" line.
  std::optional<int> port(const std::string& log) {
    const std::string text = nas::test::read_text(dir_ / log);
    static const std::regex line("store on 127\\.0\\.0\\.1:([0-9]+)");
    std::optional<int> found;
    for (auto it = std::sregex_iterator(text.begin(), text.end(), line); it != std::sregex_iterator(); ++it)
      found = std::stoi((*it)[1]);
    return found;
  }

  // Processes working in this test's folder (every nas-host it started, directly or not).
  std::vector<pid_t> processes_here() const {
    std::vector<pid_t> out;
    for (const auto& entry : fs::directory_iterator("/proc")) {
      const std::string name = entry.path().filename();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::error_code ec;
      if (fs::read_symlink(entry.path() / "cwd", ec) == dir_ && nas::test::running(std::stoi(name))) out.push_back(std::stoi(name));
    }
    return out;
  }

  // A worker started by hand, as one joins a run on another node.
  pid_t start_worker(int rank, int port, int generation) {
    return nas::test::start_host(dir_, "run --resume chaos", fmt::format("worker{}-{}.log", rank, generation),
                                 fmt::format("RANK={} WORLD_SIZE={} LOCAL_RANK={} LOCAL_WORLD_SIZE={} MASTER_ADDR=127.0.0.1 "
                                             "MASTER_PORT={}", rank, kWorkers + 1, rank - 1, kWorkers, port));
  }

  nas::test::ScratchDir scratch_;
  const fs::path& dir_ = scratch_.path();
};

TEST_F(ChaosTest, TenSeededKillsOfWorkersAndTheCoordinatorLoseAndChangeNothing) {
  const std::string search = fmt::format("'{}/search_synthetic.yaml' search.evaluations=400 search.evaluator.seconds=0.05 "
                                         "search.heartbeat_timeout=1 experiment.threads=1", nas::test::paths::configs);
  ASSERT_EQ(nas::test::run_host(dir_, fmt::format("run {} --run-dir one", search)).code, 0);

  std::mt19937 rng(15);
  std::uniform_real_distribution<double> pause(0.3, 1.5);
  std::uniform_int_distribution<int> target(0, kWorkers);  // 0: the coordinator, k: the worker of rank k
  int generation = 0;
  std::string log = "chaos-0.log";
  pid_t coordinator = nas::test::start_host(dir_, fmt::format("run {} --run-dir chaos --nproc {}", search, kWorkers), log);
  std::map<int, pid_t> current;  // rank -> its worker now: the coordinator's, or one this test started
  std::vector<pid_t> started;
  std::map<std::int64_t, nas::StoredEvaluation> kept;  // finished before some kill
  int kills = 0;
  std::string history;
  for (bool paused = false; kills < 10;) {
    if (!paused) usleep(static_cast<useconds_t>(pause(rng) * 1e6));
    paused = true;
    ASSERT_TRUE(nas::test::running(coordinator)) << "finished before 10 kills; " << history
                                                 << nas::test::read_text(dir_ / log);
    const std::optional<int> store_port = port(log);
    if (current.empty()) {  // a new coordinator: its workers
      const std::vector<pid_t> own = nas::test::children(coordinator);
      if (!store_port || own.size() < static_cast<std::size_t>(kWorkers)) {  // still starting
        usleep(20000);
        continue;
      }
      for (int rank = 1; rank <= kWorkers; ++rank) current[rank] = own[static_cast<std::size_t>(rank - 1)];
    }
    // Kill mid-search: only once something more has finished since the last kill.
    const std::size_t before = kept.size();
    for (const auto& e : rows("chaos"))
      if (finished(e)) kept.emplace(e.index, e);
    if (kept.size() == before) {
      usleep(20000);
      continue;
    }
    const int victim = target(rng);
    ++kills;
    paused = false;
    if (victim == 0) {
      history += "coordinator; ";
      kill(coordinator, SIGKILL);
      nas::test::wait_until_gone(coordinator);
      log = fmt::format("chaos-{}.log", ++generation);
      coordinator = nas::test::start_host(dir_, fmt::format("run --resume chaos --nproc {}", kWorkers), log);
      current.clear();  // the old workers stop by themselves: they lost their coordinator
      continue;
    }
    history += fmt::format("worker {}; ", victim);
    kill(current[victim], SIGKILL);
    nas::test::wait_until_gone(current[victim]);
    current[victim] = start_worker(victim, *store_port, kills);
    started.push_back(current[victim]);
  }
  nas::test::wait_until_gone(coordinator);
  // A worker started just before its coordinator was killed may still try to reach it (a worker
  // waits for rank 0 up to the store's timeout): the run is over, it has nothing left to do.
  for (pid_t pid : started) {
    kill(pid, SIGKILL);
    nas::test::wait_until_gone(pid);
  }
  // The workers of every killed coordinator stop by themselves (lost their coordinator): none is left.
  for (std::vector<pid_t> left = processes_here(); !left.empty(); left = processes_here()) usleep(100000);

  const auto final_rows = rows("chaos");
  const auto reference = rows("one");
  ASSERT_EQ(final_rows.size(), reference.size()) << history;
  for (std::size_t i = 0; i < final_rows.size(); ++i) {
    const auto& e = final_rows[i];
    EXPECT_EQ(e.index, static_cast<std::int64_t>(i)) << "every proposal exactly once";
    EXPECT_TRUE(finished(e)) << "#" << i << " is " << nas::to_string(e.status);
    EXPECT_EQ(e.status, reference[i].status) << "#" << i;
    // Sync schedule: the same search as without a single kill.
    EXPECT_EQ(e.decisions, reference[i].decisions) << "#" << i << "; " << history;
    EXPECT_EQ(e.reward, reference[i].reward) << "#" << i;
  }
  for (const auto& [index, before] : kept) {
    const auto& after = final_rows.at(static_cast<std::size_t>(index));
    EXPECT_EQ(after.reward, before.reward) << "#" << index << " changed after a kill";
    EXPECT_EQ(after.worker, before.worker) << "#" << index << " evaluated again";
  }
  EXPECT_GE(kept.size(), 1u);
  // The schedule (seeded) killed both kinds: "coordinator; worker 2; ..."
  EXPECT_GE(count_of(history, "coordinator;"), 2u) << history;
  EXPECT_GE(count_of(history, "worker"), 2u) << history;
}

}  // namespace
