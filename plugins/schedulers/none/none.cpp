// scheduler/none: every child is evaluated in full, once (the search without multi-fidelity).
#include <limits>

#include "nas/options.hpp"
#include "nas/plugin.hpp"
#include "nas/scheduler.hpp"

namespace {

class NoScheduler final : public nas::Scheduler {
 public:
  std::optional<nas::Job> promotion() override { return std::nullopt; }
  std::optional<std::int64_t> admit() override { return 0; }  // fidelity 0: in full
  void started(const nas::Job&) override {}
  void finished(const nas::Job&, std::optional<double>) override {}
  void no_more_children() override {}
  std::int64_t max_fidelity() const override { return 0; }
};

void register_all(nas::Registrar& r) {
  r.add<nas::Scheduler>("none", "every child evaluated in full (the default)", {},
                        [](const nas::Params&, const nas::Context&, const nas::SchedulerArgs&) {
                          return std::make_unique<NoScheduler>();
                        });
}

}  // namespace

NAS_PLUGIN("none-scheduler", "0.1.0", register_all)
