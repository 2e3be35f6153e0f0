// Controllers: valid proposals only, determinism, full state round trips, and learning (each learner
// beats random search on the synthetic evaluator over several seeds).
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include <gtest/gtest.h>

#include "nas/controller.hpp"
#include "nas/evaluator.hpp"
#include "nas/log.hpp"
#include "nas/space.hpp"
#include "support.hpp"

namespace {

using nas::test::params;
using nas::test::plugins;
using Changes = std::map<std::string, nas::Value, std::less<>>;

const std::vector<std::string> kControllers{"random", "evolution", "ppo", "reinforce"};

// Settings for short runs: a population that fills within them, a policy that learns within them.
Changes short_run(const std::string& name) {
  if (name == "evolution") return {{"population", std::int64_t{20}}, {"sample", std::int64_t{10}}};
  if (name == "ppo") return {{"lr", 0.005}};  // four epochs of two minibatches: 8 Adam steps per update
  if (name == "reinforce") return {{"lr", 0.02}};
  return {};
}

class ControllerTest : public ::testing::Test {
 protected:
  std::unique_ptr<nas::Controller> make(const std::string& name, std::uint64_t seed,
                                        const std::vector<nas::Decision>& decisions) {
    nas::Context context{.log = log_, .seed = seed, .registry = &plugins()};
    return plugins().create<nas::Controller>(name, params("controller/" + name, short_run(name)), context, {decisions});
  }

  // A reward any controller can learn: the share of decisions that are 0; every 7th evaluation fails.
  static std::vector<nas::Outcome> score(const std::vector<nas::Proposal>& proposals) {
    std::vector<nas::Outcome> outcomes;
    for (const nas::Proposal& p : proposals) {
      double zeros = static_cast<double>(std::count(p.decisions.begin(), p.decisions.end(), 0));
      bool fails = std::accumulate(p.decisions.begin(), p.decisions.end(), std::int64_t{0}) % 7 == 3;
      outcomes.push_back({p, fails ? std::nullopt : std::optional<double>(zeros / 7.0), fails ? "failed" : ""});
    }
    return outcomes;
  }

  // Rounds of propose + observe; every proposal in order.
  static std::vector<std::vector<std::int64_t>> trajectory(nas::Controller& c, int rounds, int per_round) {
    std::vector<std::vector<std::int64_t>> all;
    for (int r = 0; r < rounds; ++r) {
      std::vector<nas::Proposal> proposals = c.propose(per_round);
      for (const nas::Proposal& p : proposals) all.push_back(p.decisions);
      c.observe(score(proposals));
    }
    return all;
  }

  nas::Logger log_{nas::Logger::Level::error};
  // Choices differ per position and one decision has a single choice: the mask must hold at every step.
  std::vector<nas::Decision> decisions_{{"a", 2}, {"b", 3}, {"c", 1}, {"d", 13}, {"e", 4}, {"f", 2}, {"g", 6}};
};

TEST_F(ControllerTest, NeverProposesAnInvalidArchitecture) {
  for (const std::string& name : kControllers) {
    auto c = make(name, 5, decisions_);
    for (const auto& d : trajectory(*c, 30, 17)) {  // 17: rounds and updates out of step
      ASSERT_EQ(d.size(), decisions_.size()) << name;
      for (std::size_t i = 0; i < d.size(); ++i) {
        ASSERT_GE(d[i], 0) << name << " decision " << i;
        ASSERT_LT(d[i], decisions_[i].choices) << name << " decision " << i;
      }
    }
  }
}

// Resuming with a changed space must not restore a population of other architectures: evolution
// checks every member against the space (before, a damaged state could size and index anything).
TEST_F(ControllerTest, EvolutionRefusesTheStateOfAnotherSpace) {
  auto other = make("evolution", 1, {{"a", 2}, {"b", 3}});
  trajectory(*other, 2, 10);
  const std::string state = other->save_state();
  auto controller = make("evolution", 1, decisions_);
  try {
    controller->load_state(state);
    FAIL() << "restored a population of another space";
  } catch (const nas::Error& e) {
    EXPECT_NE(std::string(e.what()).find("not an evolution state of this space: a member has 2 decisions, the space 7"),
              std::string::npos) << e.what();
  }
  auto same = make("evolution", 2, decisions_);
  trajectory(*same, 2, 10);
  EXPECT_NO_THROW(controller->load_state(same->save_state()));
}

// Found by fuzz_state_ppo: a damaged archive (here a class name in its pickle changed) made
// LibTorch throw torch::jit::ErrorReport, which escaped --resume as a crash; now it is the usual error.
TEST_F(ControllerTest, PpoRefusesADamagedState) {
  auto saved = make("ppo", 1, decisions_);
  trajectory(*saved, 1, 4);
  std::string state = saved->save_state();
  const std::size_t at = state.find("c__torch__\nModule\n");  // the pickle is stored uncompressed
  ASSERT_NE(at, std::string::npos);
  state.replace(at + 11, 6, "Modulx");
  auto controller = make("ppo", 1, decisions_);
  EXPECT_THROW(controller->load_state(state), nas::Error);
}

// Found by fuzz_state_ppo (heap-buffer-overflow): torch's archives restore tensors of any shape, and
// pending results of any length. Here a state of two decisions (2 + 3 options) fits the parameters of
// one decision of 5 options exactly, but its pending results would be written past their batch.
// Another `hidden` changes the shapes. Both are refused, and the controller is left as it was.
TEST_F(ControllerTest, PolicyGradientRefusesAStateThatDoesNotFit) {
  const std::vector<nas::Decision> one{{"a", 5}};
  for (const std::string& name : {"ppo", "reinforce"}) {
    auto two = make(name, 1, {{"a", 2}, {"b", 3}});
    trajectory(*two, 1, 4);  // four results pending (an update takes 20)
    auto controller = make(name, 3, one);
    try {
      controller->load_state(two->save_state());
      FAIL() << name << " restored pending results of another space";
    } catch (const nas::Error& e) {
      EXPECT_NE(std::string(e.what()).find("a pending result has 2 decisions, expected 1"), std::string::npos) << e.what();
    }
    EXPECT_EQ(trajectory(*controller, 3, 10), trajectory(*make(name, 3, one), 3, 10)) << name << " was changed";

    nas::Context context{.log = log_, .seed = 1, .registry = &plugins()};
    auto wider = plugins().create<nas::Controller>(name, params("controller/" + name, {{"hidden", std::int64_t{7}}}),
                                                   context, {one});
    try {
      controller->load_state(wider->save_state());
      FAIL() << name << " restored parameters of another size";
    } catch (const nas::Error& e) {
      EXPECT_NE(std::string(e.what()).find("(another `hidden` or space?)"), std::string::npos) << e.what();
    }
  }
}

// Pre-screening with a screen that records what it is asked and scores an architecture by the sum of
// its decisions, with every 5th sum unscored (a proxy that failed): what the controllers propose
// follows from the samples it saw, computed here independently.
class ScreenTest : public ControllerTest {
 protected:
  std::unique_ptr<nas::Controller> screened(const std::string& name, Changes options, std::uint64_t seed = 4) {
    nas::Context context{.log = log_, .seed = seed, .registry = &plugins()};
    nas::Screen screen = [this](const std::vector<std::vector<std::int64_t>>& batch) {
      asked_.push_back(batch);
      std::vector<std::optional<double>> scores;
      for (const auto& d : batch) scores.push_back(score_of(d));
      return scores;
    };
    return plugins().create<nas::Controller>(name, params("controller/" + name, std::move(options)), context,
                                             {decisions_, screen});
  }
  static std::optional<double> score_of(const std::vector<std::int64_t>& d) {
    const auto sum = std::accumulate(d.begin(), d.end(), std::int64_t{0});
    return sum % 5 == 0 ? std::nullopt : std::optional<double>(static_cast<double>(sum));
  }
  // Best first: higher scores, ties in the order given, unscored last.
  static std::vector<std::vector<std::int64_t>> best_first(std::vector<std::vector<std::int64_t>> all) {
    std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
      const auto x = score_of(a), y = score_of(b);
      return x && (!y || *x > *y);
    });
    return all;
  }
  std::vector<std::vector<std::vector<std::int64_t>>> asked_;
};

// A screen's NaN (a proxy that overflowed) ranks with the unscored, last; infinities rank as numbers.
TEST(ScreenOrder, PutsHigherScoresFirstAndTheUnscoredAndNaNLastInTheirOrder) {
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  const std::vector<std::optional<double>> scores{2.0, nan, std::nullopt, inf, -inf, 2.0, nan, 5.0, std::nullopt, 1.0};
  EXPECT_EQ(nas::screen_order(scores), (std::vector<std::size_t>{3, 7, 0, 5, 9, 4, 1, 2, 6, 8}));
  // Many NaNs among many scores: a comparator that is not a strict weak order misplaces them.
  std::vector<std::optional<double>> many;
  for (int i = 0; i < 200; ++i) many.push_back(i % 3 == 0 ? nan : static_cast<double>((i * 37) % 101));
  const std::vector<std::size_t> order = nas::screen_order(many);
  for (std::size_t k = 0; k < order.size(); ++k) {
    const bool unscored = std::isnan(*many[order[k]]);
    EXPECT_EQ(unscored, k >= 133) << "position " << k;
    if (k > 0 && !unscored) EXPECT_GE(*many[order[k - 1]], *many[order[k]]) << "position " << k;
  }
}

TEST_F(ScreenTest, RandomSearchProposesTheBestOfEachGroupOfCandidates) {
  auto c = screened("random", {{"screen_candidates", std::int64_t{6}}});
  std::vector<nas::Proposal> proposals = c->propose(4);
  ASSERT_EQ(asked_.size(), 1u);
  ASSERT_EQ(asked_[0].size(), 24u) << "six samples scored for each of four proposals, in one call";
  for (std::size_t i = 0; i < proposals.size(); ++i) {
    std::vector<std::vector<std::int64_t>> group(asked_[0].begin() + 6 * i, asked_[0].begin() + 6 * (i + 1));
    EXPECT_EQ(proposals[i].decisions, best_first(group).front()) << "proposal " << i;
  }
  // The samples are the unscreened controller's: the same generator, drawn in the same order.
  std::vector<std::vector<std::int64_t>> plain;
  for (const nas::Proposal& p : make("random", 4, decisions_)->propose(24)) plain.push_back(p.decisions);
  EXPECT_EQ(asked_[0], plain);
}

TEST_F(ScreenTest, EvolutionStartsFromTheBestOfItsWarmupByTheScreen) {
  const Changes options{{"population", std::int64_t{8}}, {"sample", std::int64_t{3}}, {"warmup_candidates", std::int64_t{40}}};
  auto c = screened("evolution", options);
  const auto first = trajectory(*c, 2, 5);  // 10 proposals: the 8 of the population, then 2 mutations
  ASSERT_EQ(asked_.size(), 1u) << "the warm-up is scored once";
  ASSERT_EQ(asked_[0].size(), 40u);
  const auto ranked = best_first(asked_[0]);
  EXPECT_EQ(std::vector(first.begin(), first.begin() + 8), std::vector(ranked.begin(), ranked.begin() + 8));

  // A state saved in the middle of the warm-up continues as the original does (the warm-up is scored again).
  auto original = screened("evolution", options), restored = screened("evolution", options);
  trajectory(*original, 1, 3);
  restored->load_state(original->save_state());
  EXPECT_EQ(trajectory(*restored, 3, 5), trajectory(*original, 3, 5));
  EXPECT_EQ(trajectory(*screened("evolution", options), 2, 5), first) << "deterministic for a seed";
}

TEST_F(ScreenTest, ScreeningWithoutAScreenIsAConfigError) {
  nas::Context context{.log = log_, .seed = 1, .registry = &plugins()};
  auto fails = [&](const std::string& name, Changes options, const std::string& expected) {
    try {
      plugins().create<nas::Controller>(name, params("controller/" + name, std::move(options)), context, {decisions_});
      ADD_FAILURE() << name << " made without a screen";
    } catch (const nas::UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    }
  };
  fails("random", {{"screen_candidates", std::int64_t{4}}}, "screen_candidates is 4 but the search has no `screen`");
  fails("evolution", {{"population", std::int64_t{8}}, {"sample", std::int64_t{3}}, {"warmup_candidates", std::int64_t{40}}},
        "warmup_candidates needs the search's `screen`");
  fails("evolution", {{"population", std::int64_t{8}}, {"sample", std::int64_t{3}}, {"warmup_candidates", std::int64_t{5}}},
        "warmup_candidates (5) is smaller than population (8)");
}

TEST_F(ControllerTest, SameSeedSameTrajectoryOtherSeedAnother) {
  for (const std::string& name : kControllers) {
    auto a = make(name, 11, decisions_), b = make(name, 11, decisions_), c = make(name, 12, decisions_);
    auto ta = trajectory(*a, 6, 20);
    EXPECT_EQ(ta, trajectory(*b, 6, 20)) << name;
    EXPECT_NE(ta, trajectory(*c, 6, 20)) << name;
  }
}

// PPO by default takes several clipped epochs over each batch (in minibatches), so for the same seed
// it proposes other architectures than REINFORCE once it has updated.
TEST_F(ControllerTest, PpoDiffersFromReinforce) {
  auto proposals = [&](const std::string& name, const Changes& changes) {
    nas::Context context{.log = log_, .seed = 3, .registry = &plugins()};
    auto c = plugins().create<nas::Controller>(name, params("controller/" + name, changes), context, {decisions_});
    return trajectory(*c, 6, 20);
  };
  const auto reinforce = proposals("reinforce", {{"lr", 0.02}});
  const auto ppo = proposals("ppo", {{"lr", 0.02}});
  ASSERT_EQ(reinforce.size(), ppo.size());
  EXPECT_TRUE(std::equal(reinforce.begin(), reinforce.begin() + 20, ppo.begin())) << "the same policy before any update";
  EXPECT_NE(reinforce, ppo);
}

TEST_F(ControllerTest, SavedStateContinuesExactlyLikeTheOriginal) {
  for (const std::string& name : kControllers) {
    auto original = make(name, 7, decisions_);
    trajectory(*original, 3, 13);  // mid-update: results wait in the state (update_every 20)
    const std::string state = original->save_state();
    auto restored = make(name, 99, decisions_);  // another seed: everything must come from the state
    restored->load_state(state);
    EXPECT_EQ(trajectory(*original, 5, 13), trajectory(*restored, 5, 13)) << name;
  }
}

TEST_F(ControllerTest, GarbageStateIsAClearError) {
  for (const std::string& name : kControllers) {
    auto c = make(name, 1, decisions_);
    try {
      c->load_state("not a state");
      ADD_FAILURE() << name << " accepted garbage";
    } catch (const nas::Error& e) {
      EXPECT_NE(std::string(e.what()).find("state"), std::string::npos) << name << ": " << e.what();
    }
  }
}

// On the synthetic evaluator over the 50 decisions of the NASNet space (B = 5), random search's best
// after 400 evaluations stays below 0.5 (0.38 to 0.46 on these seeds; a random cell scores 0.25 on
// average); every learner, on every seed, ends at least 0.1 above random's best on any seed
// (measured: evolution 0.58 to 0.66, ppo 0.70 to 0.84, reinforce 0.62 to 0.74).
TEST_F(ControllerTest, LearnersBeatRandomSearchOnEverySeed) {
  constexpr int kBudget = 400, kSeeds = 5;
  auto best_reward = [&](const std::string& name, std::uint64_t seed) {
    nas::Context context{.log = log_, .seed = seed, .registry = &plugins()};
    std::shared_ptr<const nas::Space> space = plugins().create<nas::Space>("nasnet", params("space/nasnet"), context, {});
    auto evaluator = plugins().create<nas::Evaluator>("synthetic", params("evaluator/synthetic", {{"noise", 0.02}}),
                                                      context, {space, nullptr, {}});
    auto controller = make(name, seed, space->decisions());
    double best = 0;
    for (std::int64_t index = 0; index < kBudget;) {
      std::vector<nas::Outcome> outcomes;
      for (nas::Proposal& p : controller->propose(20)) {
        std::string genotype = space->decode(p.decisions);
        nas::Evaluation e = evaluator->evaluate({index++, p.decisions, genotype, nas::architecture_hash(*space, genotype)});
        best = std::max(best, *e.final_score);  // the noiseless truth
        outcomes.push_back({std::move(p), e.reward, e.failure});
      }
      controller->observe(outcomes);
    }
    return best;
  };
  double random_best = 0;
  std::map<std::string, std::vector<double>> learned;
  for (std::uint64_t seed = 0; seed < kSeeds; ++seed) {
    random_best = std::max(random_best, best_reward("random", seed));
    for (const std::string& name : {"evolution", "ppo", "reinforce"}) learned[name].push_back(best_reward(name, seed));
  }
  EXPECT_LT(random_best, 0.5);
  for (const auto& [name, bests] : learned)
    for (std::size_t seed = 0; seed < bests.size(); ++seed)
      EXPECT_GE(bests[seed], random_best + 0.1) << name << " seed " << seed << " (random's best over all seeds: "
                                                 << random_best << ")";
}

// What the report draws of a controller's learning: PPO and REINFORCE report their policy's entropy,
// baseline and loss after each step that updated the policy (and nothing after one that did not);
// evolution its population's fitness; random nothing.
TEST_F(ControllerTest, ControllersReportWhatTheyLearned) {
  double max_entropy = 0;  // nats: every decision uniform
  for (const nas::Decision& d : decisions_) max_entropy += std::log(static_cast<double>(d.choices));
  for (const std::string name : {"ppo", "reinforce"}) {
    auto controller = make(name, 1, decisions_);
    int updates = 0;
    for (int round = 0; round < 6; ++round) {
      controller->observe(score(controller->propose(10)));
      const auto signals = controller->learning_signals();
      if (signals.empty()) continue;  // fewer than update_every results since the last update
      ++updates;
      for (const std::string key : {"entropy", "baseline", "loss", "batch_mean_reward"})
        ASSERT_TRUE(signals.count(key)) << name << ": " << key;
      EXPECT_GT(signals.at("entropy"), 0) << name;
      EXPECT_LE(signals.at("entropy"), max_entropy + 1e-6) << name;
      EXPECT_GE(signals.at("baseline"), 0) << name;  // rewards are shares: within [0, 1]
      EXPECT_LE(signals.at("baseline"), 1) << name;
    }
    EXPECT_GE(updates, 2) << name << " updates every 20 results (failed ones teach nothing)";
    EXPECT_LE(updates, 3) << name;
  }
  auto evolution = make("evolution", 1, decisions_);
  evolution->observe(score(evolution->propose(30)));
  const auto signals = evolution->learning_signals();
  EXPECT_EQ(signals.at("population_size"), 20);  // short_run's population, full
  EXPECT_GE(signals.at("population_best_reward"), signals.at("population_mean_reward"));
  auto random = make("random", 1, decisions_);
  random->observe(score(random->propose(10)));
  EXPECT_TRUE(random->learning_signals().empty());
}

}  // namespace
