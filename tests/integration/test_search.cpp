// The search stage as a user runs it: what the store holds, what is written at the end, repeats,
// failures, determinism, and resuming after kill -9.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "nas/log.hpp"
#include "nas/space.hpp"
#include "nas/store.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

class SearchTest : public ::testing::Test {
 protected:
  nas::test::HostResult host(const std::string& args) { return nas::test::run_host(dir_, args); }
  static std::string config(const std::string& name) { return fmt::format("'{}/{}.yaml'", nas::test::paths::configs, name); }
  std::vector<nas::StoredEvaluation> rows(const std::string& run) { return nas::SearchStore(dir_ / run / "search.sqlite").evaluations(); }

  nas::test::ScratchDir scratch_;
  const fs::path& dir_ = scratch_.path();
};

// What two runs must agree on: the architectures, in order, and what became of them.
std::vector<std::tuple<std::int64_t, std::vector<std::int64_t>, std::string, std::string, std::optional<double>>> trajectory(
    const std::vector<nas::StoredEvaluation>& rows) {
  std::vector<std::tuple<std::int64_t, std::vector<std::int64_t>, std::string, std::string, std::optional<double>>> out;
  for (const auto& e : rows) out.emplace_back(e.index, e.decisions, e.hash, std::string(nas::to_string(e.status)), e.reward);
  return out;
}

TEST_F(SearchTest, RecordsEveryEvaluationAndWritesTheBest) {
  auto r = host(fmt::format("run {} --run-dir out", config("search_synthetic")));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("search stopped: 60 evaluations done"));
  EXPECT_THAT(r.output, HasSubstr("rank"));

  auto all = rows("out");
  ASSERT_EQ(all.size(), 60u);
  std::optional<double> best;
  std::int64_t failed = 0;
  for (std::size_t i = 0; i < all.size(); ++i) {
    const auto& e = all[i];
    EXPECT_EQ(e.index, static_cast<std::int64_t>(i));
    EXPECT_EQ(e.round, e.index / 20);
    EXPECT_EQ(e.space, "space/nasnet");
    EXPECT_NE(e.status, nas::EvaluationStatus::pending);
    if (e.status == nas::EvaluationStatus::failed) {
      ++failed;
      EXPECT_THAT(e.failure, HasSubstr("synthetic failure"));
      EXPECT_FALSE(e.reward);
    } else {
      ASSERT_TRUE(e.reward);
      if (!best || *e.reward > *best) best = e.reward;
    }
    if (e.status == nas::EvaluationStatus::ok) {
      EXPECT_FALSE(e.worker.empty());
      EXPECT_GE(e.finished_at, e.started_at);
      EXPECT_GE(e.started_at, e.proposed_at);
    }
  }
  EXPECT_GT(failed, 0) << "fail_rate 0.1 over 60: the search went on past failures";

  nlohmann::json summary = nlohmann::json::parse(std::ifstream(dir_ / "out" / "search.json"));
  EXPECT_EQ(summary["failed"], failed);
  ASSERT_FALSE(summary["top"].empty());
  EXPECT_DOUBLE_EQ(summary["top"][0]["reward"].get<double>(), *best);
  // The top file is a genotype the space reads back to the stored architecture.
  nas::Logger log(nas::Logger::Level::error);
  nas::Context context{.log = log, .registry = &nas::test::plugins()};
  auto space = nas::test::plugins().create<nas::Space>("nasnet", nas::test::params("space/nasnet"), context, {});
  std::string top = nas::test::read_text(dir_ / "out" / "top" / "1.genotype");
  EXPECT_EQ(nas::architecture_hash(*space, top), summary["top"][0]["hash"].get<std::string>());
  // It records the space it belongs to, with its parameters, for inspect and genotype.
  EXPECT_THAT(top, HasSubstr("# space: {plugin: nasnet, blocks: 5, ops: [identity, conv_1x3_3x1,"));
}

TEST_F(SearchTest, ATargetRewardOrWallTimeStopsTheSearchAndCancelsTheRest) {
  auto r = host(fmt::format("run {} --run-dir target search.target_reward=0.3", config("search_synthetic")));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("reached the target 0.3"));
  auto all = rows("target");
  ASSERT_FALSE(all.empty());
  const auto last = std::find_if(all.begin(), all.end(), [](const auto& e) { return e.reward && *e.reward >= 0.3; });
  ASSERT_NE(last, all.end());
  for (auto e = all.begin(); e != all.end(); ++e)
    EXPECT_EQ(e->status == nas::EvaluationStatus::cancelled, e > last) << "#" << e->index;

  r = host(fmt::format("run {} --run-dir timed search.wall_time=1e-6", config("search_synthetic")));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("wall time"));
  EXPECT_EQ(nas::test::read_text(dir_ / "timed" / "search.json").find("\"evaluated\": 60"), std::string::npos);
}

TEST_F(SearchTest, SameSeedSameSearchOtherSeedAnother) {
  ASSERT_EQ(host(fmt::format("run {} --run-dir a", config("search_synthetic"))).code, 0);
  ASSERT_EQ(host(fmt::format("run {} --run-dir b", config("search_synthetic"))).code, 0);
  ASSERT_EQ(host(fmt::format("run {} --run-dir c experiment.seed=3", config("search_synthetic"))).code, 0);
  EXPECT_EQ(trajectory(rows("a")), trajectory(rows("b")));
  EXPECT_NE(trajectory(rows("a")), trajectory(rows("c")));
}

// A space of few architectures makes repeats certain.
constexpr const char* kTinySpace =
    "search.space.blocks=1 search.space.ops=[identity,avg_pool_3x3] search.space.combines=[add] search.evaluator.fail_rate=0";

TEST_F(SearchTest, RepeatedArchitecturesReuseTheStoredResultUnlessAskedNotTo) {
  ASSERT_EQ(host(fmt::format("run {} --run-dir reuse {}", config("search_synthetic"), kTinySpace)).code, 0);
  auto all = rows("reuse");
  std::map<std::string, std::int64_t> evaluated;  // hash -> index
  std::int64_t reused = 0;
  for (const auto& e : all) {
    if (e.status == nas::EvaluationStatus::reused) {
      ++reused;
      ASSERT_TRUE(e.reused_from);
      const auto& from = all[static_cast<std::size_t>(*e.reused_from)];
      EXPECT_EQ(from.hash, e.hash);
      EXPECT_LT(from.index, e.index);
      EXPECT_EQ(from.reward, e.reward);
    } else {
      EXPECT_TRUE(evaluated.emplace(e.hash, e.index).second) << "evaluated twice: " << e.hash;
    }
  }
  EXPECT_GT(reused, 0);

  ASSERT_EQ(host(fmt::format("run {} --run-dir again {} search.repeats=evaluate", config("search_synthetic"), kTinySpace)).code, 0);
  std::set<std::string> hashes;
  std::size_t evaluated_again = 0;
  for (const auto& e : rows("again")) {
    EXPECT_NE(e.status, nas::EvaluationStatus::reused);
    hashes.insert(e.hash);
    ++evaluated_again;
  }
  EXPECT_LT(hashes.size(), evaluated_again) << "some architecture was evaluated more than once";
}

// F = 4 is too narrow for cells that concatenate two or more outputs: building those children throws.
TEST_F(SearchTest, ChildrenThatFailAreRecordedWithTheirReasonAndTheSearchGoesOn) {
  auto r = host(fmt::format("run {} --run-dir out search.evaluator.F=4", config("search_train_small")));
  ASSERT_EQ(r.code, 0) << r.output;
  std::int64_t ok = 0, failed = 0;
  for (const auto& e : rows("out")) {
    ASSERT_NE(e.status, nas::EvaluationStatus::pending);
    if (e.status == nas::EvaluationStatus::failed) {
      ++failed;
      EXPECT_THAT(e.failure, HasSubstr("F = 4 is too small"));
    } else {
      ++ok;
    }
  }
  EXPECT_GT(failed, 0);
  EXPECT_GT(ok, 0);
  EXPECT_EQ(ok + failed, 12);
  EXPECT_THAT(r.output, HasSubstr(fmt::format("({} failed)", failed)));
}

// Resuming replays the controller's proposals and observations after its last snapshot: in both
// schedules the resumed search is the uninterrupted one.
class ResumeTest : public SearchTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(ResumeTest, AKilledSearchResumesWithNothingLostOrRepeated) {
  const std::string search = fmt::format("{} search.schedule={}", config("search_train_small"), GetParam());
  ASSERT_EQ(host(fmt::format("run {} --run-dir whole", search)).code, 0);

  // The same search, killed with SIGKILL once a few children are stored, then resumed.
  const pid_t pid = nas::test::start_host(dir_, fmt::format("run {} --run-dir killed", search), "killed.log");
  const fs::path store = dir_ / "killed" / "search.sqlite";
  auto finished = [&] {
    if (!fs::exists(store)) return std::size_t{0};
    std::size_t n = 0;
    for (const auto& e : nas::SearchStore(store).evaluations()) n += e.status != nas::EvaluationStatus::pending;
    return n;
  };
  while (finished() < 5 && nas::test::running(pid)) usleep(20000);
  kill(pid, SIGKILL);
  nas::test::wait_until_gone(pid);
  const auto before = rows("killed");
  ASSERT_LT(before.size() - static_cast<std::size_t>(std::count_if(before.begin(), before.end(), [](const auto& e) {
              return e.status == nas::EvaluationStatus::pending;
            })), 12u) << "killed before the end (if not, resuming is trivial)";

  auto resumed = host("run --resume killed");
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  const auto after = rows("killed");
  EXPECT_EQ(trajectory(after), trajectory(rows("whole")));
  for (const auto& e : before)  // what was finished before the kill was not evaluated again
    if (e.status != nas::EvaluationStatus::pending) {
      EXPECT_EQ(after[static_cast<std::size_t>(e.index)].finished_at, e.finished_at) << "#" << e.index;
      EXPECT_EQ(after[static_cast<std::size_t>(e.index)].worker, e.worker) << "#" << e.index;
    }
  for (const auto& e : after) EXPECT_TRUE(e.observed) << "#" << e.index;  // the controller learned from all
}

INSTANTIATE_TEST_SUITE_P(Schedules, ResumeTest, ::testing::Values("async", "sync"));

// Pre-screening as a user runs it: evolution's initial population is the best of its warm-up by the
// screen (a zero-cost proxy in the coordinator), the same for a seed, and a resumed search proposes
// what the uninterrupted one did. A screen no controller option uses is warned about; a warm-up
// without a screen is a config error.
TEST_F(SearchTest, EvolutionWarmedUpByAProxyIsDeterministicAndResumes) {
  auto r = host(fmt::format("run {} --run-dir a", config("search_screened")));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("screen: 60 architectures scored by evaluator/proxy"));
  ASSERT_EQ(host(fmt::format("run {} --run-dir b", config("search_screened"))).code, 0);
  EXPECT_EQ(trajectory(rows("a")), trajectory(rows("b")));

  // Killed in its first round (the warm-up's): the resumed controller scores the warm-up again and
  // proposes what it did before; nothing finished is evaluated again.
  const std::string slow = fmt::format("{} search.evaluator.seconds=0.1", config("search_screened"));
  const pid_t pid = nas::test::start_host(dir_, fmt::format("run {} --run-dir killed", slow), "killed.log");
  const fs::path store = dir_ / "killed" / "search.sqlite";
  auto finished = [&] {
    if (!fs::exists(store)) return std::size_t{0};
    std::size_t n = 0;
    for (const auto& e : nas::SearchStore(store).evaluations()) n += e.status != nas::EvaluationStatus::pending;
    return n;
  };
  while (finished() < 3 && nas::test::running(pid)) usleep(20000);
  kill(pid, SIGKILL);
  nas::test::wait_until_gone(pid);
  ASSERT_LT(finished(), 10u) << "killed after the warm-up's round";
  auto resumed = host("run --resume killed");
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_THAT(resumed.output, Not(HasSubstr("proposes differently")));
  EXPECT_EQ(trajectory(rows("killed")), trajectory(rows("a")));

  auto unused = host(fmt::format("run {} --run-dir d 'search.controller={{plugin: random}}'", config("search_screened")));
  ASSERT_EQ(unused.code, 0) << unused.output;
  EXPECT_THAT(unused.output, HasSubstr("controller/random never asked the screen (evaluator/proxy) to score anything"));

  auto missing = host(fmt::format("run {} --run-dir e search.screen=null", config("search_screened")));
  EXPECT_EQ(missing.code, 2) << missing.output;
  EXPECT_THAT(missing.output, HasSubstr("warmup_candidates needs the search's `screen`"));
}

TEST_F(SearchTest, PpoOnNasBench201FindsAGoodCell) {
  const fs::path tables = fs::path(nas::test::paths::source) / "../shared/data/nasbench201";
  if (!fs::exists(tables / "nb201_12epoch.csv")) GTEST_SKIP() << "no NAS-Bench-201 tables at " << tables;
  auto r = host(fmt::format("run '{}/configs/search_nb201_ppo.yaml' --run-dir out search.evaluations=200", nas::test::paths::source));
  ASSERT_EQ(r.code, 0) << r.output;
  nlohmann::json summary = nlohmann::json::parse(std::ifstream(dir_ / "out" / "search.json"));
  const auto& best = summary["top"][0];
  // 200 of the 15,625 cells: the best found is far above the median cell (about 0.70 validation, 0.89 test).
  EXPECT_GT(best["reward"].get<double>(), 0.80);
  EXPECT_GT(best["final_score"].get<double>(), 0.90);
  EXPECT_LE(best["final_score"].get<double>(), 0.94374);  // the benchmark's best cell
  EXPECT_THAT(nas::test::read_text(dir_ / "out" / "top" / "1.genotype"), HasSubstr("~0|+|"));
}

// search -> select -> retrain -> final from one file: each stage reads what the one before wrote.
TEST_F(SearchTest, TheWholePipelineRunsFromOneFile) {
  auto r = host(fmt::format("run {} --run-dir out", config("pipeline_small")));
  ASSERT_EQ(r.code, 0) << r.output;
  for (const char* file : {"search.sqlite", "top/1.genotype", "selected/1.genotype", "selected/2.genotype", "retrain.json",
                           "best.genotype", "result.json", "weights.pt"})
    EXPECT_TRUE(fs::exists(dir_ / "out" / file)) << file;
  nlohmann::json retrained = nlohmann::json::parse(std::ifstream(dir_ / "out" / "retrain.json"));
  ASSERT_EQ(retrained.size(), 2u);
  const auto& winner = retrained[0]["validation_top1"].get<double>() >= retrained[1]["validation_top1"].get<double>()
                           ? retrained[0] : retrained[1];
  EXPECT_THAT(nas::test::read_text(dir_ / "out" / "best.genotype"), HasSubstr(winner["file"].get<std::string>()));
  nlohmann::json result = nlohmann::json::parse(std::ifstream(dir_ / "out" / "result.json"));
  EXPECT_EQ(result["genotype"], "out/best.genotype");  // the final stage trained the winner

  // Any stage alone, from a previous run's outputs.
  r = host(fmt::format("run {} --run-dir again pipeline=[select,retrain] select.from=out", config("pipeline_small")));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir_ / "again" / "best.genotype"));
  r = host(fmt::format("run {} --run-dir lost pipeline=[final]", config("pipeline_small")));
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.output, HasSubstr("final: no genotype given"));
}

}  // namespace
