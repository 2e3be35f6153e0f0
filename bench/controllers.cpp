// Controller cost: time to propose 20 architectures and learn from their 20 results (one policy
// update for ppo/reinforce; ppo with its defaults and with its nasnet_paper preset), over the 50 decisions of the NASNet space (B = 5), and memory.
//
//   build/release/bin/nas_bench_controllers [--rounds 50] [--threads 1]
//
// Controllers alternate round by round, so machine noise hits all alike; each reports the median
// and 90th percentile of its rounds, the size of its saved state, and the process's peak RSS growth
// while it ran. Rewards come from the synthetic evaluator.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <tuple>
#include <vector>

#include <ATen/Parallel.h>
#include <fmt/format.h>

#include "nas/controller.hpp"
#include "nas/evaluator.hpp"
#include "nas/loader.hpp"
#include "nas/log.hpp"
#include "nas/space.hpp"
#include "flags.hpp"

namespace {

using bench::flag;

double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))];
}

long peak_rss_kb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

}  // namespace

int main(int argc, char** argv) {
  const std::int64_t rounds = flag(argc, argv, "rounds", 50);
  at::set_num_threads(static_cast<int>(flag(argc, argv, "threads", 1)));  // the controller's work is tiny

  nas::Logger log;
  nas::Registry registry;
  nas::load_plugins(registry, {nas::default_plugin_dir()});
  nas::Context context{.log = log, .registry = &registry};
  auto defaults = [&](const std::string& kind, const std::string& name) {
    const nas::Entry& entry = registry.require(kind, name);
    return nas::default_params(entry.schema, entry.key);
  };
  std::shared_ptr<const nas::Space> space = registry.create<nas::Space>("nasnet", defaults("space", "nasnet"), context, {});
  auto evaluator = registry.create<nas::Evaluator>("synthetic", defaults("evaluator", "synthetic"), context, {space, nullptr, {}});
  const std::vector<nas::Decision> decisions = space->decisions();

  struct Run {
    std::string name;
    std::unique_ptr<nas::Controller> controller;
    std::vector<double> ms, propose_ms;
    long rss_growth_kb = 0;
  };
  std::vector<Run> runs;
  // ppo twice: its defaults (4 epochs of 2 minibatches) and its preset nasnet_paper (one step).
  for (const auto& [label, name, preset] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"random", "random", ""}, {"evolution", "evolution", ""}, {"reinforce", "reinforce", ""},
           {"ppo", "ppo", ""}, {"ppo paper", "ppo", "nasnet_paper"}}) {
    auto values = defaults("controller", name).values();
    if (!preset.empty())
      for (const auto& [key, value] : registry.require("controller", name).presets.at(preset)) values[key] = value;
    long before = peak_rss_kb();
    runs.push_back({label, registry.create<nas::Controller>(name, nas::Params(values), context, {decisions}), {}, {}, 0});
    runs.back().rss_growth_kb = peak_rss_kb() - before;
  }
  std::int64_t index = 0;
  for (std::int64_t r = 0; r < rounds; ++r)
    for (Run& run : runs) {
      long before = peak_rss_kb();
      auto start = std::chrono::steady_clock::now();
      std::vector<nas::Proposal> proposals = run.controller->propose(20);
      auto proposed = std::chrono::steady_clock::now();
      // Rewards (not timed): what the evaluators would send back.
      std::vector<nas::Outcome> outcomes;
      for (nas::Proposal& p : proposals) {
        nas::Evaluation e = evaluator->evaluate({index++, p.decisions, {}, std::to_string(index)});
        outcomes.push_back({std::move(p), e.reward, e.failure});
      }
      auto observing = std::chrono::steady_clock::now();
      run.controller->observe(outcomes);
      auto done = std::chrono::steady_clock::now();
      run.ms.push_back(std::chrono::duration<double, std::milli>((proposed - start) + (done - observing)).count());
      run.propose_ms.push_back(std::chrono::duration<double, std::milli>(proposed - start).count());
      run.rss_growth_kb += peak_rss_kb() - before;
    }
  fmt::print("propose 20 + observe 20 (one update), NASNet space ({} decisions), {} rounds, {} thread(s)\n",
             decisions.size(), rounds, at::get_num_threads());
  fmt::print("{:<10} {:>10} {:>10} {:>12} {:>12} {:>16}\n", "controller", "median ms", "p90 ms", "propose ms",
             "state bytes", "peak RSS growth");
  for (const Run& run : runs)
    fmt::print("{:<10} {:>10.2f} {:>10.2f} {:>12.2f} {:>12} {:>13} kB\n", run.name, quantile(run.ms, 0.5),
               quantile(run.ms, 0.9), quantile(run.propose_ms, 0.5), run.controller->save_state().size(), run.rss_growth_kb);
  fmt::print("peak RSS of the process: {} MB\n", peak_rss_kb() / 1024);
}
