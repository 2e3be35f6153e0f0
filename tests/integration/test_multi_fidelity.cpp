// Multi-fidelity search as a user runs it: every (architecture, fidelity) recorded once, promotions
// only of the rung's best at the time, the controller learning from the first rung, the best cells
// ranked by the fidelity they reached; with workers; and a kill -9 in the middle of a rung changing
// nothing.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <map>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "nas/store.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using ::testing::HasSubstr;

namespace {

class MultiFidelityTest : public ::testing::Test {
 protected:
  nas::test::HostResult host(const std::string& args) { return nas::test::run_host(dir_, args); }
  static std::string config(const std::string& name) { return fmt::format("'{}/{}.yaml'", nas::test::paths::configs, name); }
  nas::SearchStore store(const std::string& run) { return nas::SearchStore(dir_ / run / "search.sqlite"); }

  // Every job of a run by (index, fidelity), each there once; `finished`: none left pending.
  std::map<std::pair<std::int64_t, std::int64_t>, nas::StoredJob> jobs(const std::string& run, bool finished = true) {
    std::map<std::pair<std::int64_t, std::int64_t>, nas::StoredJob> out;
    for (const nas::StoredJob& j : store(run).jobs()) {
      if (finished) EXPECT_NE(j.status, nas::EvaluationStatus::pending) << "#" << j.job.index << " at " << j.job.fidelity;
      EXPECT_TRUE(out.emplace(std::pair(j.job.index, j.job.fidelity), j).second) << "twice: #" << j.job.index;
    }
    return out;
  }

  // ASHA's rule, checked on the finished store: rungs 1, 3 and 9 reached, and every child on a rung
  // above the first came from an ok job on the rung below that had finished when it was promoted.
  // `exact` (a search in one process, where every result that has finished is known when the next
  // job is handed out): the child was then among the best floor(n / 3) of the n results of that rung
  // (failures last, ties to the lower index). With workers, a result can finish before a promotion
  // and reach the coordinator after it, so only the first part holds.
  void expect_asha(const std::string& run, bool exact) {
    const auto all = jobs(run);
    std::map<std::int64_t, std::vector<const nas::StoredJob*>> rungs;
    for (const auto& [key, j] : all) rungs[key.second].push_back(&j);
    ASSERT_EQ(rungs.size(), 3u) << "rungs 1, 3 and 9 all reached";
    EXPECT_TRUE(rungs.contains(1) && rungs.contains(3) && rungs.contains(9));
    for (auto [below, above] : {std::pair<std::int64_t, std::int64_t>{1, 3}, {3, 9}}) {
      for (const nas::StoredJob* j : rungs[above]) {
        auto from = all.find({j->job.index, below});
        ASSERT_NE(from, all.end()) << "#" << j->job.index << " skipped fidelity " << below;
        EXPECT_EQ(from->second.status, nas::EvaluationStatus::ok) << "a failed child was promoted";
        EXPECT_LE(from->second.finished_at, j->dispatched_at) << "#" << j->job.index << " promoted before its result";
        if (!exact) continue;
        std::vector<std::pair<double, std::int64_t>> known;  // -reward, index: best first
        std::size_t results = 0;
        for (const nas::StoredJob* r : rungs[below]) {
          if (r->status == nas::EvaluationStatus::cancelled || r->finished_at > j->dispatched_at) continue;
          ++results;
          if (r->reward) known.emplace_back(-*r->reward, r->job.index);
        }
        std::sort(known.begin(), known.end());
        known.resize(std::min(known.size(), results / 3));
        EXPECT_TRUE(std::any_of(known.begin(), known.end(), [&](const auto& k) { return k.second == j->job.index; }))
            << "#" << j->job.index << " promoted to " << above << " from outside the best third of " << results;
      }
    }
  }

  nas::test::ScratchDir scratch_;
  const fs::path& dir_ = scratch_.path();
};

TEST_F(MultiFidelityTest, AshaRecordsEveryFidelityOnceAndRanksByTheFidelityReached) {
  auto r = host(fmt::format("run {} --run-dir out", config("search_asha")));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("scheduler/asha up to fidelity 9"));
  EXPECT_THAT(r.output, HasSubstr("search stopped: 60 evaluations done"));
  expect_asha("out", true);

  // Each child's row is its first evaluation, at fidelity 1: what the controller learned from.
  const auto all = jobs("out");
  std::int64_t children = 0;
  for (const nas::StoredEvaluation& e : store("out").evaluations()) {
    if (e.status == nas::EvaluationStatus::reused) continue;
    ++children;
    auto first = all.find({e.index, 1});
    ASSERT_NE(first, all.end()) << "#" << e.index;
    EXPECT_EQ(first->second.reward, e.reward) << "#" << e.index;
    EXPECT_TRUE(e.observed) << "#" << e.index;
  }
  EXPECT_EQ(children + 0, static_cast<std::int64_t>(std::count_if(all.begin(), all.end(), [](const auto& j) {
              return j.first.second == 1;
            })));

  // The best cell is the best of those evaluated in full; search.json counts the promotions.
  const nlohmann::json summary = nlohmann::json::parse(nas::test::read_text(dir_ / "out" / "search.json"));
  std::optional<double> best_in_full;
  std::int64_t promotions = 0;
  for (const auto& [key, j] : all) {
    promotions += key.second > 1 && j.status != nas::EvaluationStatus::cancelled;
    if (key.second == 9 && j.reward && (!best_in_full || *j.reward > *best_in_full)) best_in_full = j.reward;
  }
  ASSERT_TRUE(best_in_full);
  EXPECT_EQ(summary["top"][0]["fidelity"], 9);
  EXPECT_DOUBLE_EQ(summary["top"][0]["reward"].get<double>(), *best_in_full);
  EXPECT_EQ(summary["promotions"], promotions);
  EXPECT_THAT(nas::test::read_text(dir_ / "out" / "top" / "1.genotype"), HasSubstr("at fidelity 9"));
}

// How the jobs split between the workers depends on when each started: only the total is fixed.
TEST_F(MultiFidelityTest, WithTwoWorkersAshaCompletesAndRecordsEachFidelityOnce) {
  auto r = host(fmt::format("run {} --run-dir two --nproc 2 search.evaluator.seconds=0.02", config("search_asha")));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("on 2 workers"));
  expect_asha("two", false);
  const auto all = jobs("two");
  std::map<std::string, std::int64_t> by_worker;
  for (const auto& [key, j] : all) ++by_worker[j.worker];
  EXPECT_FALSE(by_worker.contains("")) << "a job evaluated outside the workers";
  EXPECT_LE(by_worker.size(), 2u);
  EXPECT_THAT(r.output, HasSubstr(fmt::format("{} results from 2 workers", all.size())));
}

// evaluator/crashing (a test plugin) knows no fidelities: a scheduler with it is a config error, before
// anything runs.
TEST_F(MultiFidelityTest, AnEvaluatorWithoutFidelitiesIsRefusedUpFront) {
  auto r = host(fmt::format("run {} --plugin-path '{}/crashing' search.scheduler.plugin=asha --run-dir refused",
                            config("search_crashing"), nas::test::paths::test_plugins));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("scheduler/asha evaluates children at fidelities below the full one; "
                                  "evaluator/crashing cannot (it does not declare multi_fidelity)"));
  EXPECT_FALSE(fs::exists(dir_ / "refused" / "search.sqlite"));
}

// Synchronous brackets killed with SIGKILL while a rung runs, then resumed: the same jobs with the
// same results as without the kill, and nothing that had finished evaluated again.
TEST_F(MultiFidelityTest, AKillInTheMiddleOfARungChangesNoDecision) {
  const std::string search = fmt::format("{} search.scheduler.plugin=successive_halving search.scheduler.children=9 "
                                         "search.schedule=sync search.batch=9 search.evaluator.seconds=0.05",
                                         config("search_asha"));
  ASSERT_EQ(host(fmt::format("run {} --run-dir whole", search)).code, 0);

  const pid_t pid = nas::test::start_host(dir_, fmt::format("run {} --run-dir killed", search), "killed.log");
  const fs::path file = dir_ / "killed" / "search.sqlite";
  auto promoted = [&] {
    if (!fs::exists(file)) return std::size_t{0};
    std::size_t n = 0;
    for (const nas::StoredJob& j : nas::SearchStore(file).jobs())
      n += j.job.fidelity == 3 && j.status != nas::EvaluationStatus::pending;
    return n;
  };
  while (promoted() < 1 && nas::test::running(pid)) usleep(10000);  // the first rung 3 has begun
  kill(pid, SIGKILL);
  nas::test::wait_until_gone(pid);
  const auto before = jobs("killed", false);
  ASSERT_LT(before.size(), jobs("whole").size()) << "killed after the end";

  auto resumed = host("run --resume killed");
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  const auto whole = jobs("whole"), after = jobs("killed");
  ASSERT_EQ(after.size(), whole.size());
  for (const auto& [key, j] : whole) {
    auto same = after.find(key);
    ASSERT_NE(same, after.end()) << "#" << key.first << " at " << key.second << " missing after the resume";
    EXPECT_EQ(same->second.reward, j.reward) << "#" << key.first << " at " << key.second;
  }
  for (const auto& [key, j] : before)
    if (j.status != nas::EvaluationStatus::pending)
      EXPECT_EQ(after.at(key).finished_at, j.finished_at) << "#" << key.first << " at " << key.second << " again";
}

}  // namespace
