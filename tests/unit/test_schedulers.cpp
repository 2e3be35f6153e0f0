// Multi-fidelity schedulers: the rungs, and which jobs successive halving, Hyperband and ASHA start,
// in which order, driven through the interface the search uses (slots, results); and that their
// state depends only on what started and finished, not on the order the search tells them.
#include <algorithm>
#include <set>

#include <gtest/gtest.h>

#include "nas/log.hpp"
#include "nas/scheduler.hpp"
#include "support.hpp"

namespace {

using nas::Job;
using Changes = std::map<std::string, nas::Value, std::less<>>;

std::unique_ptr<nas::Scheduler> make(const std::string& name, Changes changes, std::int64_t children = 0) {
  static nas::Logger log(nas::Logger::Level::error);
  nas::Context context{.log = log, .seed = 1, .registry = &nas::test::plugins()};
  return nas::test::plugins().create<nas::Scheduler>(name, nas::test::params("scheduler/" + name, std::move(changes)),
                                                     context, {children});
}

// Every child's reward, the same at every fidelity: a fixed shuffle of 0.00 .. 0.99.
double reward(std::int64_t index) { return static_cast<double>((index * 37 + 11) % 100) / 100.0; }

// The search's use of a scheduler with `slots` evaluations at once and `children` new children at
// most: fill the free slots (promotions first), then finish the oldest running job. Returns every
// job in the order it started.
std::vector<Job> drive(nas::Scheduler& s, std::size_t slots, std::int64_t children) {
  std::vector<Job> started, running;
  std::int64_t next = 0;
  for (;;) {
    while (running.size() < slots) {
      std::optional<Job> job = s.promotion();
      if (!job && next < children)
        if (std::optional<std::int64_t> f = s.admit()) job = Job{next++, *f};
      if (!job) break;
      s.started(*job);
      started.push_back(*job);
      running.push_back(*job);
    }
    if (running.empty()) return started;
    s.finished(running.front(), reward(running.front().index));
    running.erase(running.begin());
  }
}

std::vector<std::int64_t> at(const std::vector<Job>& jobs, std::int64_t fidelity) {
  std::vector<std::int64_t> out;
  for (const Job& j : jobs)
    if (j.fidelity == fidelity) out.push_back(j.index);
  return out;
}

TEST(SchedulerTest, RungsGrowByTheReductionFromTheTop) {
  EXPECT_EQ(make("asha", {{"min_fidelity", std::int64_t{1}}, {"max_fidelity", std::int64_t{27}}})->max_fidelity(), 27);
  // 1..10 by 3: 10/9 and 10/3 rounded; every job lands on one of them.
  auto s = make("asha", {{"min_fidelity", std::int64_t{1}}, {"max_fidelity", std::int64_t{10}}});
  std::set<std::int64_t> fidelities;
  for (const Job& j : drive(*s, 1, 30)) fidelities.insert(j.fidelity);
  EXPECT_EQ(fidelities, (std::set<std::int64_t>{1, 3, 10}));
  EXPECT_THROW(make("asha", {{"min_fidelity", std::int64_t{5}}, {"max_fidelity", std::int64_t{4}}}), nas::UsageError);
  EXPECT_EQ(make("none", {})->max_fidelity(), 0);
}

// Rungs 1, 3, 9. Worked by hand: rewards of children 0..8 are 0.11 0.48 0.85 0.22 0.59 0.96 0.33
// 0.70 0.07. A rung of n results promotes its best floor(n/3), the highest rung first, one job per slot.
TEST(SchedulerTest, AshaPromotesWheneverARungAllowsWithoutWaiting) {
  auto s = make("asha", {});
  const std::vector<Job> expected{{0, 1}, {1, 1}, {2, 1}, {2, 3},  // 3 results: the best (#2, 0.85) goes up
                                  {3, 1}, {4, 1}, {5, 1}, {5, 3},  // 6: the best two, #2 and #5 (0.96)
                                  {6, 1}, {7, 1}, {8, 1}, {7, 3},  // 9: the best three add #7 (0.70)
                                  {5, 9}};                          // rung 3 holds 3: its best, #5, to 9
  EXPECT_EQ(drive(*s, 1, 9), expected);
}

// Successive halving, brackets of 9: all 9 at 1, the best 3 at 3, the best one at 9; the next bracket
// starts only when the first is over, however many slots are free.
TEST(SchedulerTest, SuccessiveHalvingKeepsTheBestThirdOfEachFullRung) {
  auto s = make("successive_halving", {{"children", std::int64_t{9}}});
  const std::vector<Job> jobs = drive(*s, 4, 18);
  EXPECT_EQ(at(jobs, 1), (std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}));
  EXPECT_EQ(at(jobs, 3), (std::vector<std::int64_t>{5, 2, 7, 13, 10, 15}));  // each bracket's best three, best first
  EXPECT_EQ(at(jobs, 9), (std::vector<std::int64_t>{5, 13}));
  const auto first_of_second = std::find(jobs.begin(), jobs.end(), Job{9, 1});
  const auto last_of_first = std::find(jobs.begin(), jobs.end(), Job{5, 9});
  EXPECT_LT(last_of_first, first_of_second) << "the second bracket started before the first was over";
}

// The search's budget cuts the last bracket short: its rung is full with what the budget leaves.
TEST(SchedulerTest, SuccessiveHalvingClosesABracketTheBudgetCutsShort) {
  auto s = make("successive_halving", {{"children", std::int64_t{9}}}, 12);
  const std::vector<Job> jobs = drive(*s, 2, 12);
  EXPECT_EQ(at(jobs, 3), (std::vector<std::int64_t>{5, 2, 7, 10}));  // the second is #9..#11: its best one
  EXPECT_EQ(at(jobs, 9), (std::vector<std::int64_t>{5, 10}));
}

// Hyperband over rungs 1, 3, 9 (s_max 2): brackets of 9 children at 1, 5 at 3, 3 at 9, then again.
TEST(SchedulerTest, HyperbandCyclesThroughBracketsStartingAtEachRung) {
  auto s = make("hyperband", {});
  std::vector<std::int64_t> first_fidelity(20, 0);
  for (const Job& j : drive(*s, 3, 20))
    if (first_fidelity[static_cast<std::size_t>(j.index)] == 0) first_fidelity[static_cast<std::size_t>(j.index)] = j.fidelity;
  std::vector<std::int64_t> expected(9, 1);
  expected.insert(expected.end(), 5, 3);
  expected.insert(expected.end(), 3, 9);
  expected.insert(expected.end(), 3, 1);
  EXPECT_EQ(first_fidelity, expected);
}

// A resumed search replays the stored jobs by index and fidelity, not in the order they ran: the
// next decision must be the same.
TEST(SchedulerTest, StateDependsOnWhatStartedAndFinishedNotOnTheOrder) {
  for (const std::string name : {"asha", "successive_halving", "hyperband"}) {
    auto live = make(name, {{"reduction", std::int64_t{2}}, {"max_fidelity", std::int64_t{8}}});
    std::vector<Job> jobs = drive(*live, 3, 10);
    jobs.resize(jobs.size() * 2 / 3);  // a search interrupted here: the rest not started
    auto fresh = [&] { return make(name, {{"reduction", std::int64_t{2}}, {"max_fidelity", std::int64_t{8}}}); };
    auto in_order = fresh(), sorted = fresh();
    for (const Job& j : jobs) in_order->started(j);
    for (const Job& j : jobs) in_order->finished(j, reward(j.index));
    std::sort(jobs.begin(), jobs.end(), [](const Job& a, const Job& b) {
      return std::pair(a.index, a.fidelity) < std::pair(b.index, b.fidelity);
    });
    for (const Job& j : jobs) sorted->started(j);
    for (auto j = jobs.rbegin(); j != jobs.rend(); ++j) sorted->finished(*j, reward(j->index));
    EXPECT_EQ(in_order->promotion(), sorted->promotion()) << name;
    EXPECT_EQ(in_order->admit(), sorted->admit()) << name;
  }
}

// Repeats that reuse a stored result never reach the scheduler, so a bracket can wait for children
// that will never come: told so, it goes on with the ones it has.
TEST(SchedulerTest, ABracketThatNoChildWillFillGoesOnWithTheChildrenItHas) {
  for (const std::string name : {"successive_halving", "hyperband"}) {
    auto s = make(name, {});  // rungs 1, 3, 9; first brackets of 27 and 9 children
    for (std::int64_t i = 0; i < 6; ++i) {
      ASSERT_EQ(s->admit(), 1) << name;
      s->started({i, 1});
      s->finished({i, 1}, reward(i));
    }
    EXPECT_FALSE(s->promotion()) << name << ": the bracket waits to fill";
    s->no_more_children();
    // The best max(1, 6 / 3) of the six: #5 (0.96) and #2 (0.85).
    std::optional<Job> first = s->promotion();
    ASSERT_TRUE(first) << name;
    EXPECT_EQ(*first, (Job{5, 3})) << name;
    s->started(*first);
    EXPECT_EQ(s->promotion(), (Job{2, 3})) << name;
  }
}

TEST(SchedulerTest, AFailedChildIsNeverPromoted) {
  auto s = make("asha", {});
  auto result = [&](std::int64_t index, std::optional<double> r) {
    s->started({index, 1});
    s->finished({index, 1}, r);
  };
  for (std::int64_t i = 0; i < 3; ++i) result(i, std::nullopt);
  EXPECT_EQ(s->promotion(), std::nullopt) << "a rung of failures promotes none";
  result(3, 0.2);
  result(4, std::nullopt);
  result(5, std::nullopt);
  ASSERT_EQ(s->promotion(), (Job{3, 3}));  // of 6 the best 2 may go up: only #3 has a reward
  s->started({3, 3});
  EXPECT_EQ(s->promotion(), std::nullopt);
}

}  // namespace
