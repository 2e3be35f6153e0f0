// Kind "controller": proposes architectures as vectors of categorical decisions and learns from
// their rewards. Controllers know nothing of cells; a search space turns decisions into networks.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "nas/api.hpp"
#include "nas/kinds.hpp"

namespace nas {

/// One categorical decision: pick one of `choices` options (0 .. choices-1).
struct Decision {
  std::string name;
  std::int64_t choices = 0;
};

struct Proposal {
  std::vector<std::int64_t> decisions;  ///< one index per Decision
  std::string memo;  ///< opaque to everyone but the controller, handed back with the result
};

struct Outcome {
  Proposal proposal;
  std::optional<double> reward;  ///< empty: the evaluation failed
  std::string failure;           ///< why, when it failed
};

class NAS_API Controller {
 public:
  virtual ~Controller();
  virtual std::vector<Proposal> propose(std::int64_t count) = 0;
  virtual void observe(const std::vector<Outcome>& outcomes) = 0;
  /// The full state (weights, optimizer, baseline, RNG) as bytes, and back.
  virtual std::string save_state() const = 0;
  virtual void load_state(const std::string& state) = 0;
  /// What the controller learned in its last observe() call, as named numbers (e.g. the policy's
  /// entropy, the reward baseline), recorded in the store for each step and drawn by `nas-host report`.
  /// Empty by default. (ABI 2.2)
  virtual std::map<std::string, double> learning_signals() const;
};

/// Scores architectures (decision vectors) without training them, higher better, an empty score
/// where one could not be scored: the search's `screen` slot (a zero-cost proxy, e.g. evaluator/proxy),
/// for controllers that pre-screen what they propose. Deterministic: an architecture always gets the same score.
using Screen = std::function<std::vector<std::optional<double>>(const std::vector<std::vector<std::int64_t>>&)>;

struct ControllerArgs {
  std::vector<Decision> decisions;
  /// The search's screen, or empty where it has none (ABI 2.4: appended, so a controller built for
  /// an older SDK reads `decisions` unchanged; the host gives a screen only to controllers built for 2.4 on).
  Screen screen;
};

/// The positions of `scores`, best first: higher score first, ties in their order, unscored (empty or
/// NaN) last.
NAS_API std::vector<std::size_t> screen_order(const std::vector<std::optional<double>>& scores);

template <>
struct KindOf<Controller> {
  static constexpr std::string_view name = "controller";
  using Args = ControllerArgs;
  using Ptr = std::unique_ptr<Controller>;
};

/// Every decision uniform over its choices.
NAS_API std::vector<std::int64_t> sample_decisions(const std::vector<Decision>& decisions, std::mt19937_64& rng);
/// One decision, chosen uniformly among those with more than one choice, set to another value.
NAS_API std::vector<std::int64_t> mutate_decisions(const std::vector<Decision>& decisions,
                                                   std::vector<std::int64_t> values, std::mt19937_64& rng);

}  // namespace nas
