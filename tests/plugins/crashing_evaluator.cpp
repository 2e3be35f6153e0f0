// evaluator/crashing: kills its own process on chosen evaluations, as a kernel that corrupts the heap
// or a child that runs out of memory would (tests of evaluator isolation). Evaluations whose index is
// k-1 modulo `every` crash with `crash` (segfault or abort); with `once`, only the first time (a
// marker file in its folder remembers it). Every call is appended to RUN_DIR/search/evaluate_calls.txt
// ("index pid"), so tests can count how often each architecture was evaluated and where.
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "nas/evaluator.hpp"
#include "nas/plugin.hpp"

namespace {

class CrashingEvaluator final : public nas::Evaluator {
 public:
  CrashingEvaluator(const nas::Params& p, const nas::Context& context)
      : crash_(p.get<std::string>("crash")), every_(p.get<std::int64_t>("every")), once_(p.get<bool>("once")),
        run_dir_(context.run_dir) {}

  nas::Evaluation evaluate(const nas::Candidate& candidate) override {
    std::ofstream(run_dir_ / "evaluate_calls.txt", std::ios::app) << candidate.index << " " << getpid() << "\n";
    if (every_ > 0 && candidate.index % every_ == every_ - 1) {
      const std::filesystem::path marker = run_dir_ / fmt::format("crashed-{}", candidate.index);
      if (!once_ || !std::filesystem::exists(marker)) {
        std::ofstream{marker};
        if (crash_ == "abort") std::abort();
        std::raise(SIGSEGV);
      }
    }
    nas::Evaluation out;
    out.reward = static_cast<double>(std::hash<std::string>{}(candidate.hash) % 1000) / 1000.0;
    return out;
  }

 private:
  std::string crash_;
  std::int64_t every_;
  bool once_;
  std::filesystem::path run_dir_;
};

void register_all(nas::Registrar& r) {
  using namespace nas::param;
  r.add<nas::Evaluator>("crashing", "kills its process on every k-th evaluation (tests of isolation)",
                        {choice("crash", {"segfault", "abort"}, "segfault").help("how the process dies"),
                         integer("every", 3).at_least(0).help("evaluations k-1, 2k-1, ... crash; 0: none"),
                         boolean("once", false).help("crash only the first time an evaluation is tried")},
                        [](const nas::Params& p, const nas::Context& context, const nas::EvaluatorArgs&) {
                          return std::make_unique<CrashingEvaluator>(p, context);
                        });
}

}  // namespace

NAS_PLUGIN("crashing-evaluator", "0.1.0", register_all)
