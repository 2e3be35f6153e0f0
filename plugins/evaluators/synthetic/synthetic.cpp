// evaluator/synthetic: a deterministic reward with a known optimum, for tests and controller studies.
// A hidden target decision vector is drawn from `optimum_seed`; the reward is the fraction of the
// candidate's decisions equal to the target's (1 at the optimum), plus Gaussian noise that is a
// function of the architecture, so the same architecture always gets the same reward. It can also
// take time like a real evaluation (to study schedules): `seconds` each, `straggler_seconds` for a
// `straggler_rate` fraction of the architectures.
//
// Multi-fidelity (Candidate::fidelity f, 1 .. max_fidelity): the reward at f mixes the standardized
// final reward s with a standard normal z of the architecture's own, mu + sigma (a s + sqrt(1 - a^2) z),
// where mu and sigma are the mean and spread of the final reward over uniformly random architectures
// (exact: each decision matches with probability 1/choices) and a grows from fidelity_correlation at
// fidelity 1 to 1 at max_fidelity, linearly in log f. Over random architectures the reward at
// fidelity 1 thus has exactly correlation fidelity_correlation with the final one (its rank correlation
// is close: (6/pi) asin(rho/2)). The time taken scales as f / max_fidelity.
#include <chrono>
#include <cmath>
#include <random>
#include <thread>

#include "nas/evaluator.hpp"
#include "nas/options.hpp"
#include "nas/plugin.hpp"
#include "nas/registry.hpp"
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
  std::int64_t max_fidelity = 9;
  double fidelity_correlation = 0.5;

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
                                                                                    "straggler"),
        nas::field("max_fidelity", &O::max_fidelity).range(1, 1000000).help(
            "multi-fidelity: the fidelity at which the reward is the final one (a scheduler's max_fidelity)"),
        nas::field("fidelity_correlation", &O::fidelity_correlation).range(0, 1).help(
            "multi-fidelity: correlation of the reward at fidelity 1 with the final reward (1 at max_fidelity)")};
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
        straggler_seconds_(o.straggler_seconds),
        max_fidelity_(o.max_fidelity),
        correlation_(o.fidelity_correlation) {
    // Derived, not the seed itself: a controller seeded with the same number must not draw the optimum.
    std::mt19937_64 rng(nas::derive_seed(seed_, kOptimumStream, 0));
    for (const nas::Decision& d : space.decisions())
      optimum_.push_back(std::uniform_int_distribution<std::int64_t>(0, d.choices - 1)(rng));
    const auto n = static_cast<double>(optimum_.size());
    for (const nas::Decision& d : space.decisions()) {
      const double p = 1.0 / static_cast<double>(d.choices);
      mean_ += p / n;
      spread_ += p * (1 - p) / (n * n);
    }
    spread_ = std::sqrt(spread_);
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
    if (candidate.fidelity > max_fidelity_)
      throw nas::UsageError(fmt::format("evaluator/synthetic: fidelity {} is above its max_fidelity {}; set max_fidelity "
                                        "to the scheduler's", candidate.fidelity, max_fidelity_));
    const double share = candidate.fidelity > 0 ? static_cast<double>(candidate.fidelity) / static_cast<double>(max_fidelity_) : 1.0;
    std::this_thread::sleep_for(std::chrono::duration<double>(share * (straggler ? straggler_seconds_ : seconds_)));
    std::mt19937_64 rng(seq);
    rng.discard(seed_ % 1024);  // another optimum_seed, other noise
    if (std::uniform_real_distribution<double>(0, 1)(rng) < fail_rate_) {
      out.failure = fmt::format("synthetic failure (fail_rate {})", fail_rate_);
      return out;
    }
    double matches = 0;
    for (std::size_t i = 0; i < optimum_.size(); ++i) matches += candidate.decisions[i] == optimum_[i] ? 1 : 0;
    double noise = noise_ > 0 ? std::normal_distribution<double>(0, noise_)(rng) : 0.0;
    const double final = matches / static_cast<double>(optimum_.size());
    out.reward = at_fidelity(final, candidate) + noise;
    out.final_score = final;  // the noiseless truth
    return out;
  }

 private:
  double at_fidelity(double final, const nas::Candidate& candidate) const {
    if (candidate.fidelity <= 0 || candidate.fidelity >= max_fidelity_ || spread_ == 0) return final;
    const double a = correlation_ + (1 - correlation_) * std::log(static_cast<double>(candidate.fidelity)) /
                                        std::log(static_cast<double>(max_fidelity_));
    std::seed_seq seq(candidate.hash.begin(), candidate.hash.end());
    std::mt19937_64 rng(seq);
    rng.discard(2048 + seed_ % 1024);  // its own draw, apart from the noise's and the failure's
    const double z = std::normal_distribution<double>(0, 1)(rng);
    return mean_ + spread_ * (a * (final - mean_) / spread_ + std::sqrt(1 - a * a) * z);
  }

  std::uint64_t seed_;
  double noise_, fail_rate_, seconds_, straggler_rate_, straggler_seconds_;
  std::int64_t max_fidelity_;
  double correlation_;
  std::vector<std::int64_t> optimum_;
  double mean_ = 0, spread_ = 0;  // of the final reward over uniformly random architectures
};

void register_all(nas::Registrar& r) {
  r.add<nas::Evaluator>("synthetic", "reward = fraction of decisions equal to a hidden optimum, plus noise (for tests)",
                        nas::schema_of<Options>(),
                        [](const nas::Params& p, const nas::Context&, const nas::EvaluatorArgs& args) {
                          return std::make_unique<SyntheticEvaluator>(nas::options_from<Options>(p), *args.space);
                        },
                        {std::string(nas::capability::multi_fidelity)});
}

}  // namespace

NAS_PLUGIN("synthetic-evaluator", "0.1.0", register_all)
