// Evaluator isolation: children evaluated in a supervised process that may die (a segfault, an
// abort) without taking the search down; retried on fresh processes, then recorded as failed.
#include <signal.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "nas/store.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using ::testing::HasSubstr;

namespace {

class IsolationTest : public ::testing::Test {
 protected:
  // The search of tests/configs/search_crashing.yaml: 12 evaluations, #2, #5, #8 and #11 crash.
  nas::test::HostResult search(const std::string& args) {
    return nas::test::run_host(dir_, fmt::format("run '{}/search_crashing.yaml' --plugin-path '{}/crashing' {}",
                                                 nas::test::paths::configs, nas::test::paths::test_plugins, args));
  }
  std::vector<nas::StoredEvaluation> rows(const std::string& run) {
    return nas::SearchStore(dir_ / run / "search.sqlite").evaluations();
  }
  // Evaluation index -> the process ids that evaluated it, one per call.
  std::map<std::int64_t, std::vector<int>> calls(const std::string& run) {
    std::map<std::int64_t, std::vector<int>> out;
    std::ifstream in(dir_ / run / "search" / "evaluate_calls.txt");  // the evaluator's folder
    std::int64_t index = 0;
    int pid = 0;
    while (in >> index >> pid) out[index].push_back(pid);
    return out;
  }
  static bool crashes(std::int64_t index) { return index % 3 == 2; }

  // Every crashing evaluation failed after `attempts` calls, each in a process of its own; every
  // other evaluation succeeded and ran exactly once.
  void expect_crashes_failed_alone(const std::string& run, const std::string& failure, std::size_t attempts) {
    const auto all = rows(run);
    ASSERT_EQ(all.size(), 12u);
    auto made = calls(run);
    for (const auto& e : all) {
      const std::vector<int>& pids = made[e.index];
      if (crashes(e.index)) {
        EXPECT_EQ(e.status, nas::EvaluationStatus::failed) << "#" << e.index;
        EXPECT_EQ(e.failure, failure) << "#" << e.index;
        EXPECT_EQ(pids.size(), attempts) << "#" << e.index;
        EXPECT_EQ(std::set<int>(pids.begin(), pids.end()).size(), pids.size()) << "#" << e.index << ": a fresh process each";
      } else {
        EXPECT_EQ(e.status, nas::EvaluationStatus::ok) << "#" << e.index;
        EXPECT_EQ(pids.size(), 1u) << "#" << e.index;
      }
    }
  }

  nas::test::ScratchDir scratch_;
  const fs::path& dir_ = scratch_.path();
};

TEST_F(IsolationTest, ASegfaultingChildFailsAloneAfterItsRetries) {
  auto r = search("--run-dir out");
  ASSERT_EQ(r.code, 0) << r.output;
  expect_crashes_failed_alone("out", "worker died: SIGSEGV (3 attempts)", 3);
  EXPECT_THAT(r.output, HasSubstr("evaluation #2: its evaluator process died (SIGSEGV); retrying on a fresh process"));
  EXPECT_THAT(r.output, HasSubstr("12 evaluated (4 failed)"));
}

TEST_F(IsolationTest, AnAbortIsRecordedWithItsSignalAndTheConfiguredRetries) {
  auto r = search("--run-dir out search.evaluator.crash=abort search.retries=0");
  ASSERT_EQ(r.code, 0) << r.output;
  expect_crashes_failed_alone("out", "worker died: SIGABRT (1 attempt)", 1);
}

TEST_F(IsolationTest, AChildThatCrashesOnceSucceedsOnItsRetry) {
  auto r = search("--run-dir out search.evaluator.once=true");
  ASSERT_EQ(r.code, 0) << r.output;
  auto made = calls("out");
  for (const auto& e : rows("out")) {
    EXPECT_EQ(e.status, nas::EvaluationStatus::ok) << "#" << e.index;
    EXPECT_EQ(made[e.index].size(), crashes(e.index) ? 2u : 1u) << "#" << e.index;
  }
}

TEST_F(IsolationTest, WorkersIsolateTheirChildrenToo) {
  auto r = search("--run-dir out --nproc 2");
  ASSERT_EQ(r.code, 0) << r.output;
  expect_crashes_failed_alone("out", "worker died: SIGSEGV (3 attempts)", 3);
  // Neither worker rank died with its children: both closed the queue themselves.
  std::size_t closed = 0;
  for (std::size_t at = 0; (at = r.output.find("evaluations done here", at)) != std::string::npos; ++at) ++closed;
  EXPECT_EQ(closed, 2u) << r.output;
}

TEST_F(IsolationTest, IsolationNoneEvaluatesInTheSearchProcess) {
  auto r = search("--run-dir out search.evaluator.every=0 search.isolation=none");
  ASSERT_EQ(r.code, 0) << r.output;
  const int search_pid = std::stoi(rows("out").front().worker.substr(rows("out").front().worker.rfind(':') + 1));
  for (const auto& [index, pids] : calls("out")) EXPECT_EQ(pids, std::vector<int>{search_pid}) << "#" << index;
}

TEST_F(IsolationTest, AKilledSearchTakesItsEvaluatorProcessAlong) {
  const pid_t host = nas::test::start_host(
      dir_, fmt::format("run '{}/search_synthetic.yaml' --run-dir out search.evaluator.seconds=0.2", nas::test::paths::configs),
      "out.log");
  // Its one child, once started: the evaluator process.
  int child = 0;
  for (int i = 0; i < 3000 && child == 0 && nas::test::running(host); ++i) {
    std::ifstream(fmt::format("/proc/{}/task/{}/children", host, host)) >> child;
    if (child == 0) usleep(10000);
  }
  ASSERT_NE(child, 0) << nas::test::read_text(dir_ / "out.log");
  auto command = [&] { return nas::test::read_text(fmt::format("/proc/{}/cmdline", child)); };
  for (int i = 0; i < 3000 && command().find("evaluator") == std::string::npos; ++i) {  // until it has exec'd
    usleep(1000);
    std::ifstream(fmt::format("/proc/{}/task/{}/children", host, host)) >> child;
  }
  EXPECT_THAT(command(), HasSubstr("evaluator"));
  kill(host, SIGKILL);
  nas::test::wait_until_gone(child);  // would hang, were it left behind
}

}  // namespace
