// controller/evolution: regularized (aging) evolution (Real et al. 2019). The first `population`
// proposals are uniform; after that each proposal is the best of `sample` members drawn from the
// population, with one decision mutated. Observed architectures join the population and the oldest
// leaves, whatever its reward. With `warmup_candidates` W, the first `population` proposals are
// instead the best `population` of W uniform samples by the search's screen (a zero-cost proxy),
// best first: an initial population chosen without training W architectures.
#include <algorithm>
#include <deque>
#include <random>
#include <sstream>

#include <fmt/format.h>

#include "nas/controller.hpp"
#include "nas/options.hpp"
#include "nas/plugin.hpp"

namespace {

struct Options {
  std::int64_t population = 50;
  std::int64_t sample = 10;
  std::int64_t warmup_candidates = 0;

  static auto fields() {
    return std::tuple{
        nas::field("population", &Options::population).at_least(1).help("members kept (the first this many proposals "
                                                                          "are random)"),
        nas::field("sample", &Options::sample).at_least(1).help("tournament size: members drawn to pick a parent"),
        nas::field("warmup_candidates", &Options::warmup_candidates).range(0, 10000000).help(
            "the first `population` proposals are the best of this many uniform samples by the search's `screen` "
            "(0: uniform, no screening)")};
  }
};

struct Member {
  std::vector<std::int64_t> decisions;
  double reward = 0;
};

class EvolutionController final : public nas::Controller {
 public:
  EvolutionController(std::vector<nas::Decision> decisions, Options options, nas::Screen screen, std::uint64_t seed)
      : decisions_(std::move(decisions)), population_size_(options.population), sample_(options.sample),
        warmup_candidates_(options.warmup_candidates), screen_(std::move(screen)), seed_(seed),
        rng_(nas::generator(seed, nas::stream("controller"), 0)) {
    if (sample_ > population_size_)
      throw nas::UsageError(fmt::format("controller/evolution: sample ({}) is larger than population ({})", sample_,
                                        population_size_));
    if (warmup_candidates_ > 0 && warmup_candidates_ < population_size_)
      throw nas::UsageError(fmt::format("controller/evolution: warmup_candidates ({}) is smaller than population ({}): "
                                        "the initial population is chosen among them", warmup_candidates_,
                                        population_size_));
    if (warmup_candidates_ > 0 && !screen_)
      throw nas::UsageError("controller/evolution: warmup_candidates needs the search's `screen` to rank them; add e.g. "
                            "`screen: {plugin: proxy, proxy: synflow}` to the search section, or set warmup_candidates "
                            "to 0");
  }

  std::vector<nas::Proposal> propose(std::int64_t count) override {
    std::vector<nas::Proposal> out;
    for (std::int64_t i = 0; i < count; ++i) {
      // Until the population is full (or while every evaluation failed), explore uniformly.
      if (random_proposals_ < population_size_ || population_.empty()) {
        out.push_back({initial(random_proposals_++), {}});
        continue;
      }
      std::uniform_int_distribution<std::size_t> pick(0, population_.size() - 1);
      const Member* parent = nullptr;
      for (std::int64_t s = 0; s < sample_; ++s) {
        const Member& m = population_[pick(rng_)];
        if (!parent || m.reward > parent->reward) parent = &m;
      }
      out.push_back({nas::mutate_decisions(decisions_, parent->decisions, rng_), {}});
    }
    return out;
  }

  void observe(const std::vector<nas::Outcome>& outcomes) override {
    for (const nas::Outcome& o : outcomes) {
      if (!o.reward) continue;  // a failed child has no fitness; it does not join
      population_.push_back({o.proposal.decisions, *o.reward});
      if (static_cast<std::int64_t>(population_.size()) > population_size_) population_.pop_front();  // aging
    }
  }

  // The population's fitness: what selection draws parents from.
  std::map<std::string, double> learning_signals() const override {
    if (population_.empty()) return {};
    double sum = 0, best = population_.front().reward;
    for (const Member& m : population_) {
      sum += m.reward;
      best = std::max(best, m.reward);
    }
    return {{"population_mean_reward", sum / static_cast<double>(population_.size())},
            {"population_best_reward", best},
            {"population_size", static_cast<double>(population_.size())}};
  }

  std::string save_state() const override {
    std::ostringstream out;
    out << rng_ << "\n" << random_proposals_ << " " << population_.size() << "\n";
    for (const Member& m : population_) {
      out << std::hexfloat << m.reward << std::defaultfloat << " " << m.decisions.size();
      for (std::int64_t d : m.decisions) out << " " << d;
      out << "\n";
    }
    return out.str();
  }

  void load_state(const std::string& state) override {
    std::istringstream in(state);
    std::size_t members = 0;
    in >> rng_ >> random_proposals_ >> members;
    std::deque<Member> population;
    // Checked as it is read: a state from another space (or a damaged one) must not size or index anything.
    auto fail = [](const std::string& why) {
      throw nas::Error("controller/evolution: the saved state is not an evolution state of this space: " + why);
    };
    if (in && members > static_cast<std::size_t>(population_size_)) fail("more members than the population");
    for (std::size_t i = 0; in && i < members; ++i) {
      Member m;
      std::string reward;
      std::size_t n = 0;
      in >> reward >> n;
      m.reward = std::strtod(reward.c_str(), nullptr);  // hexfloat: exact
      if (in && n != decisions_.size()) fail(fmt::format("a member has {} decisions, the space {}", n, decisions_.size()));
      m.decisions.resize(in ? n : 0);
      for (std::size_t k = 0; k < m.decisions.size() && in; ++k)
        if (in >> m.decisions[k] && (m.decisions[k] < 0 || m.decisions[k] >= decisions_[k].choices))
          fail(fmt::format("decision {} is {}, outside 0..{}", k, m.decisions[k], decisions_[k].choices - 1));
      population.push_back(std::move(m));
    }
    if (!in) throw nas::Error("controller/evolution: the saved state is truncated or not an evolution state");
    population_ = std::move(population);
  }

 private:
  // The i-th proposal of the initial population: uniform, or the i-th best by the screen of the
  // warm-up's samples. Those come from a generator of their own, so the warm-up is a function of the
  // seed alone: a restored state computes it again rather than carry it.
  std::vector<std::int64_t> initial(std::int64_t i) {
    if (warmup_candidates_ == 0 || i >= population_size_) return nas::sample_decisions(decisions_, rng_);
    if (warmup_.empty()) {
      std::mt19937_64 rng = nas::generator(seed_, nas::stream("warmup"), 0);
      std::vector<std::vector<std::int64_t>> samples;
      for (std::int64_t k = 0; k < warmup_candidates_; ++k) samples.push_back(nas::sample_decisions(decisions_, rng));
      for (std::size_t at : nas::screen_order(screen_(samples))) warmup_.push_back(std::move(samples[at]));
      warmup_.resize(static_cast<std::size_t>(population_size_));
    }
    return warmup_[static_cast<std::size_t>(i)];
  }

  std::vector<nas::Decision> decisions_;
  std::int64_t population_size_, sample_, warmup_candidates_;
  nas::Screen screen_;
  std::uint64_t seed_;
  std::vector<std::vector<std::int64_t>> warmup_;  // the screened initial population, best first; computed on first use
  std::mt19937_64 rng_;
  std::int64_t random_proposals_ = 0;
  std::deque<Member> population_;
};

void register_all(nas::Registrar& r) {
  r.add<nas::Controller>(
      "evolution", "regularized (aging) evolution: tournament selection, mutate one decision, the oldest dies",
      nas::schema_of<Options>(), [](const nas::Params& p, const nas::Context& context, const nas::ControllerArgs& args) {
        return std::make_unique<EvolutionController>(args.decisions, nas::options_from<Options>(p), args.screen,
                                                     context.seed);
      });
}

}  // namespace

NAS_PLUGIN("evolution", "0.1.0", register_all)
