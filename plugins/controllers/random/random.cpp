// controller/random: uniform sampling of every decision; the baseline every other controller must beat.
#include <random>
#include <sstream>

#include "nas/controller.hpp"
#include "nas/plugin.hpp"
#include "nas/seed.hpp"

namespace {

class RandomController final : public nas::Controller {
 public:
  RandomController(std::vector<nas::Decision> decisions, std::uint64_t seed)
      : decisions_(std::move(decisions)), rng_(nas::generator(seed, nas::stream("controller"), 0)) {
    for (const nas::Decision& d : decisions_)
      if (d.choices < 1) throw nas::Error(fmt::format("decision '{}' has {} choices; expected at least 1", d.name, d.choices));
  }

  std::vector<nas::Proposal> propose(std::int64_t count) override {
    std::vector<nas::Proposal> out(static_cast<std::size_t>(count));
    for (nas::Proposal& p : out) p.decisions = nas::sample_decisions(decisions_, rng_);
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
  std::mt19937_64 rng_;
};

void register_all(nas::Registrar& r) {
  r.add<nas::Controller>("random", "uniform sampling of every decision (the random-search baseline)", {},
                         [](const nas::Params&, const nas::Context& context, const nas::ControllerArgs& args) {
                           return std::make_unique<RandomController>(args.decisions, context.seed);
                         });
}

}  // namespace

NAS_PLUGIN("random", "0.1.0", register_all)
