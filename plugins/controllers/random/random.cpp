// controller/random: uniform sampling of every decision; the baseline every other controller must beat.
// With `screen_candidates` k > 1, each proposal is the best of k uniform samples by the search's
// screen (a zero-cost proxy): random search pre-screened, k architectures scored for each one trained.
#include <random>
#include <sstream>

#include "nas/controller.hpp"
#include "nas/options.hpp"
#include "nas/plugin.hpp"
#include "nas/seed.hpp"

namespace {

struct Options {
  std::int64_t screen_candidates = 1;

  static auto fields() {
    return std::tuple{nas::field("screen_candidates", &Options::screen_candidates).range(1, 100000).help(
        "each proposal is the best of this many uniform samples by the search's `screen` (1: no screening)")};
  }
};

class RandomController final : public nas::Controller {
 public:
  RandomController(std::vector<nas::Decision> decisions, Options options, nas::Screen screen, std::uint64_t seed)
      : decisions_(std::move(decisions)), candidates_(options.screen_candidates), screen_(std::move(screen)),
        rng_(nas::generator(seed, nas::stream("controller"), 0)) {
    for (const nas::Decision& d : decisions_)
      if (d.choices < 1) throw nas::Error(fmt::format("decision '{}' has {} choices; expected at least 1", d.name, d.choices));
    if (candidates_ > 1 && !screen_)
      throw nas::UsageError(fmt::format("controller/random: screen_candidates is {} but the search has no `screen` to "
                                        "rank them; add e.g. `screen: {{plugin: proxy, proxy: synflow}}` to the search "
                                        "section, or set screen_candidates to 1", candidates_));
  }

  std::vector<nas::Proposal> propose(std::int64_t count) override {
    std::vector<std::vector<std::int64_t>> samples;  // candidates_ for each proposal, one after another
    for (std::int64_t k = 0; k < count * candidates_; ++k) samples.push_back(nas::sample_decisions(decisions_, rng_));
    std::vector<std::optional<double>> scores;
    if (candidates_ > 1) scores = screen_(samples);
    std::vector<nas::Proposal> out(static_cast<std::size_t>(count));
    for (std::size_t i = 0; i < out.size(); ++i) {
      const auto first = static_cast<std::ptrdiff_t>(i) * candidates_;
      const std::size_t best =
          candidates_ > 1 ? nas::screen_order({scores.begin() + first, scores.begin() + first + candidates_}).front() : 0;
      out[i].decisions = std::move(samples[static_cast<std::size_t>(first) + best]);
    }
    return out;
  }

  void observe(const std::vector<nas::Outcome>&) override {}  // random search learns nothing

  std::string save_state() const override {
    std::ostringstream out;
    out << rng_;
    return out.str();
  }

  void load_state(const std::string& state) override {
    std::istringstream in(state);
    in >> rng_;
    if (!in) throw nas::Error("controller/random: the saved state is not a generator state");
  }

 private:
  std::vector<nas::Decision> decisions_;
  std::int64_t candidates_;
  nas::Screen screen_;
  std::mt19937_64 rng_;
};

void register_all(nas::Registrar& r) {
  r.add<nas::Controller>("random", "uniform sampling of every decision (the random-search baseline)",
                         nas::schema_of<Options>(),
                         [](const nas::Params& p, const nas::Context& context, const nas::ControllerArgs& args) {
                           return std::make_unique<RandomController>(args.decisions, nas::options_from<Options>(p),
                                                                     args.screen, context.seed);
                         });
}

}  // namespace

NAS_PLUGIN("random", "0.1.0", register_all)
