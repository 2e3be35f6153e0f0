// The search store: rows through their lifecycle, snapshots, persistence, and errors naming the file.
#include <cmath>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "nas/evaluator.hpp"
#include "nas/store.hpp"
#include "support.hpp"

namespace {

using ::testing::HasSubstr;

nas::StoredEvaluation proposal(std::int64_t index, std::string hash) {
  nas::StoredEvaluation e;
  e.index = index;
  e.round = index / 2;
  e.space = "space/test";
  e.hash = std::move(hash);
  e.genotype = "genotype " + e.hash;
  e.decisions = {index, 1, 2};
  e.memo = std::string("memo\0with zero", 14);
  e.proposed_at = 1000.0 + static_cast<double>(index);
  return e;
}

TEST(StoreTest, RowsGoFromPendingToTheirResultAndSurviveReopening) {
  nas::test::ScratchDir dir;
  const auto file = dir.path() / "search.sqlite";
  {
    nas::SearchStore store(file);
    store.add_proposals({proposal(0, "aa"), proposal(1, "bb"), proposal(2, "aa"), proposal(3, "cc")});
    nas::Evaluation ok;
    ok.reward = 0.75;
    ok.final_score = 0.9;
    ok.metrics = {{"params", 1234}, {"seconds", 2.5}};
    store.record_result(0, ok, "host:1", 1010, 1020);
    nas::Evaluation failed;
    failed.failure = "diverged at step 3";
    store.record_result(1, failed, "host:1", 1020, 1021);
    ASSERT_TRUE(store.first_evaluated("aa"));
    store.record_reuse(2, store.first_evaluated("aa")->index, 1022);
    store.record_observed({0, 2}, 1);
    store.record_observed({1}, 2);
    store.cancel_pending();
    EXPECT_THROW(store.record_observed({3}, 3), nas::Error);  // nothing to observe
    EXPECT_THROW(store.record_result(0, ok, "host:1", 0, 0), nas::Error);  // no longer pending
  }
  nas::SearchStore store(file);
  auto rows = store.evaluations();
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].status, nas::EvaluationStatus::ok);
  EXPECT_EQ(rows[0].reward, 0.75);
  EXPECT_EQ(rows[0].final_score, 0.9);
  EXPECT_EQ(rows[0].metrics.at("params"), 1234);
  EXPECT_EQ(rows[0].worker, "host:1");
  EXPECT_EQ(rows[0].memo, std::string("memo\0with zero", 14));
  EXPECT_EQ(rows[0].decisions, (std::vector<std::int64_t>{0, 1, 2}));
  EXPECT_EQ(rows[1].status, nas::EvaluationStatus::failed);
  EXPECT_FALSE(rows[1].reward);
  EXPECT_EQ(rows[1].failure, "diverged at step 3");
  EXPECT_EQ(rows[2].status, nas::EvaluationStatus::reused);
  EXPECT_EQ(rows[2].reused_from, 0);
  EXPECT_EQ(rows[2].reward, 0.75);
  EXPECT_EQ(rows[3].status, nas::EvaluationStatus::cancelled);
  EXPECT_EQ(rows[0].round, 0);
  EXPECT_EQ(rows[3].round, 1);
  EXPECT_EQ(rows[0].observed, 1);
  EXPECT_EQ(rows[1].observed, 2);
  EXPECT_EQ(rows[2].observed, 1);
  EXPECT_FALSE(rows[3].observed);
  EXPECT_FALSE(store.first_evaluated("cc"));
}

TEST(StoreTest, KeepsTheLatestSnapshotAndMeta) {
  nas::test::ScratchDir dir;
  nas::SearchStore store(dir.path() / "search.sqlite");
  EXPECT_FALSE(store.latest_snapshot());
  store.save_snapshot({1, std::string("state\0one", 9)});
  store.save_snapshot({2, "state two"});
  ASSERT_TRUE(store.latest_snapshot());
  EXPECT_EQ(store.latest_snapshot()->round, 2);
  EXPECT_EQ(store.latest_snapshot()->state, "state two");
  EXPECT_FALSE(store.meta("seconds"));
  store.set_meta("seconds", "1.5");
  store.set_meta("seconds", "2.5");
  EXPECT_EQ(store.meta("seconds"), "2.5");
}

TEST(StoreTest, AnIndexTakenTwiceAddsNothing) {
  nas::test::ScratchDir dir;
  nas::SearchStore store(dir.path() / "search.sqlite");
  store.add_proposals({proposal(0, "aa")});
  EXPECT_THROW(store.add_proposals({proposal(1, "bb"), proposal(0, "cc")}), nas::Error);
  EXPECT_EQ(store.evaluations().size(), 1u);  // the whole batch or nothing
}

// A job starts once; one that a stopping search cancelled (wall time, target reward) may start again
// when the search is resumed, and its result is then recorded as usual.
TEST(StoreTest, AJobStartsOnceUnlessItWasCancelled) {
  nas::test::ScratchDir dir;
  nas::SearchStore store(dir.path() / "search.sqlite");
  store.add_proposals({proposal(0, "aa")});
  store.start_job({0, 1}, 10);
  nas::Evaluation ok;
  ok.reward = 0.5;
  EXPECT_TRUE(store.record_job({0, 1}, ok, "host:1", 11, 12)) << "the child's first result";
  store.start_job({0, 3}, 13);
  EXPECT_THAT([&] { store.start_job({0, 3}, 14); },
              ::testing::ThrowsMessage<nas::Error>(HasSubstr("job 0 at fidelity 3 was started before")));
  store.cancel_pending();
  store.start_job({0, 3}, 15);
  ok.reward = 0.7;
  EXPECT_FALSE(store.record_job({0, 3}, ok, "host:1", 16, 17)) << "a promotion";
  const std::vector<nas::StoredJob> jobs = store.jobs();
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[1].status, nas::EvaluationStatus::ok);
  EXPECT_EQ(jobs[1].reward, 0.7);
  EXPECT_EQ(jobs[1].dispatched_at, 15);
  EXPECT_EQ(store.evaluation(0).fidelity, 3);
  EXPECT_EQ(store.evaluation(0).reward_reached, 0.7);
}

TEST(StoreTest, AFileThatIsNotAStoreIsAnErrorNamingIt) {
  nas::test::ScratchDir dir;
  const auto file = dir.path() / "notes.sqlite";
  std::ofstream(file) << "these are my notes, not a database, and they are long enough to be read as a header\n";
  try {
    nas::SearchStore store(file);
    FAIL() << "opened a text file";
  } catch (const nas::Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(file.string()));
  }
}

}  // namespace

TEST(StoreTest, RecordsTheControllersSignalsWithEachObservedStep) {
  nas::test::ScratchDir dir;
  nas::SearchStore store(dir.path() / "search.sqlite");
  store.add_proposals({proposal(0, "aa"), proposal(1, "bb")});
  nas::Evaluation ok;
  ok.reward = 0.5;
  store.record_result(0, ok, "w", 1, 2);
  store.record_result(1, ok, "w", 1, 2);
  store.record_observed({0}, 1, {{"entropy", 3.5}, {"baseline", 0.25}, {"nan", std::nan("")}});
  store.record_observed({1}, 2);  // a step that learned nothing reports nothing
  const auto signals = store.signals();
  ASSERT_EQ(signals.size(), 2u) << "a value that is not a number is left out";
  EXPECT_EQ(signals[0].step, 1);
  EXPECT_EQ(signals[0].name, "baseline");
  EXPECT_EQ(signals[0].value, 0.25);
  EXPECT_EQ(signals[1].name, "entropy");
  EXPECT_EQ(signals[1].value, 3.5);
  // Observing a row without a result fails whole: neither the step nor its signals are recorded.
  store.add_proposals({proposal(2, "cc")});
  EXPECT_THROW(store.record_observed({2}, 3, {{"entropy", 1.0}}), nas::Error);
  EXPECT_EQ(store.signals().size(), 2u);
}

TEST(StoreTest, AReaderReadsWhatTheSearchWritesAndWritesNothing) {
  nas::test::ScratchDir dir;
  const auto file = dir.path() / "search.sqlite";
  EXPECT_THROW(nas::SearchStore(file, nas::SearchStore::Access::read), nas::Error) << "a reader creates no store";
  EXPECT_FALSE(std::filesystem::exists(file));
  nas::SearchStore writer(file);
  writer.add_proposals({proposal(0, "aa")});
  const nas::SearchStore reader(file, nas::SearchStore::Access::read);
  writer.add_proposals({proposal(1, "bb")});
  EXPECT_EQ(reader.evaluations().size(), 2u) << "what the search commits, the reader sees";
  nas::SearchStore other(file, nas::SearchStore::Access::read);
  EXPECT_THROW(other.set_meta("seconds", "1"), nas::Error);
  EXPECT_FALSE(writer.meta("seconds"));
}
