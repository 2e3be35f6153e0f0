// evaluator/synthetic: a deterministic reward with a known optimum, for tests and controller studies.
// A hidden target decision vector is drawn from `optimum_seed`; the reward is the fraction of the
// candidate's decisions equal to the target's (1 at the optimum), plus Gaussian noise that is a
// function of the architecture, so the same architecture always gets the same reward. It can also
// take time like a real evaluation (to study schedules): `seconds` each, `straggler_seconds` for a
// `straggler_rate` fraction of the architectures.
#include <chrono>
#include <random>
#include <thread>

#include "nas/evaluator.hpp"
#include "nas/options.hpp"
#include "nas/plugin.hpp"
#include "nas/space.hpp"

namespace {

constexpr std::uint64_t kOptimumStream = 0x6f7074;  // "opt"

struct Options {
  std::int64_t optimum_seed = 1;
  double noise = 0.0;
  double fail_rate = 0.0;
  double seconds = 0.0;
  double straggler_rate = 0.0;
  double straggler_seconds = 0.0;

  static auto fields() {
    using O = Options;
    return std::tuple{
        nas::field("optimum_seed", &O::optimum_seed).at_least(0).help("draws the hidden optimum"),
        nas::field("noise", &O::noise).range(0, 10).help("standard deviation of the reward noise (fixed per architecture)"),
        nas::field("fail_rate", &O::fail_rate).range(0, 1).help("fraction of architectures whose evaluation fails"),
        nas::field("seconds", &O::seconds).range(0, 86400).help("simulated evaluation time"),
        nas::field("straggler_rate", &O::straggler_rate).range(0, 1).help("fraction of architectures that take "
                                                                          "straggler_seconds instead"),
        nas::field("straggler_seconds", &O::straggler_seconds).range(0, 86400).help("simulated evaluation time of a "
                                                                                    "straggler")};
  }
};

class SyntheticEvaluator final : public nas::Evaluator {
 public:
  SyntheticEvaluator(const Options& o, const nas::Space& space)
      : seed_(static_cast<std::uint64_t>(o.optimum_seed)),
        noise_(o.noise),
        fail_rate_(o.fail_rate),
        seconds_(o.seconds),
        straggler_rate_(o.straggler_rate),
        straggler_seconds_(o.straggler_seconds) {
    // Derived, not the seed itself: a controller seeded with the same number must not draw the optimum.
    std::mt19937_64 rng(nas::derive_seed(seed_, kOptimumStream, 0));
    for (const nas::Decision& d : space.decisions())
      optimum_.push_back(std::uniform_int_distribution<std::int64_t>(0, d.choices - 1)(rng));
  }

  nas::Evaluation evaluate(const nas::Candidate& candidate) override {
    nas::Evaluation out;
    if (candidate.decisions.size() != optimum_.size()) {
      out.failure = fmt::format("{} decisions, expected {}", candidate.decisions.size(), optimum_.size());
      return out;
    }
    std::seed_seq seq(candidate.hash.begin(), candidate.hash.end());
    std::mt19937_64 timing(seq);  // its own stream: the rewards do not depend on the timing settings
    const bool straggler = std::uniform_real_distribution<double>(0, 1)(timing) < straggler_rate_;
    std::this_thread::sleep_for(std::chrono::duration<double>(straggler ? straggler_seconds_ : seconds_));
    std::mt19937_64 rng(seq);
    rng.discard(seed_ % 1024);  // another optimum_seed, other noise
    if (std::uniform_real_distribution<double>(0, 1)(rng) < fail_rate_) {
      out.failure = fmt::format("synthetic failure (fail_rate {})", fail_rate_);
      return out;
    }
    double matches = 0;
    for (std::size_t i = 0; i < optimum_.size(); ++i) matches += candidate.decisions[i] == optimum_[i] ? 1 : 0;
    double noise = noise_ > 0 ? std::normal_distribution<double>(0, noise_)(rng) : 0.0;
    out.reward = matches / static_cast<double>(optimum_.size()) + noise;
    out.final_score = matches / static_cast<double>(optimum_.size());  // the noiseless truth
    return out;
  }

 private:
  std::uint64_t seed_;
  double noise_, fail_rate_, seconds_, straggler_rate_, straggler_seconds_;
  std::vector<std::int64_t> optimum_;
};

void register_all(nas::Registrar& r) {
  r.add<nas::Evaluator>("synthetic", "reward = fraction of decisions equal to a hidden optimum, plus noise (for tests)",
                        nas::schema_of<Options>(),
                        [](const nas::Params& p, const nas::Context&, const nas::EvaluatorArgs& args) {
                          return std::make_unique<SyntheticEvaluator>(nas::options_from<Options>(p), *args.space);
                        });
}

}  // namespace

NAS_PLUGIN("synthetic-evaluator", "0.1.0", register_all)
