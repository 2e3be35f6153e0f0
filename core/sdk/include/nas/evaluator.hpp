// Kind "evaluator": turns one proposed architecture into a reward. A search hands evaluators
// candidates and records what comes back; evaluators know nothing of controllers or the store, so
// they can run in other processes and on other machines.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nas/api.hpp"
#include "nas/kinds.hpp"

namespace nas {

class Dataset;
class Regularizer;
class Space;

/// One architecture to evaluate.
struct Candidate {
  std::int64_t index = 0;                ///< the evaluation's number in the search (0, 1, ...)
  std::vector<std::int64_t> decisions;   ///< as the controller proposed them
  std::string genotype;                  ///< the space's text for them
  std::string hash;                      ///< architecture_hash: equal for architectures that build the same network
  /// Multi-fidelity search (ABI 2.3; only for evaluators declaring capability multi_fidelity): evaluate
  /// to this fidelity, in the evaluator's unit (train: epochs), continuing from what an earlier
  /// evaluation of the same index reached. 0: in full, as without a scheduler.
  std::int64_t fidelity = 0;
};

struct Evaluation {
  std::optional<double> reward;          ///< empty: the evaluation failed
  std::string failure;                   ///< why it failed ("diverged at step 12", "out of memory: ...")
  /// A score to judge the search by, not to learn from (NAS-Bench-201: 200-epoch test accuracy).
  std::optional<double> final_score;
  std::map<std::string, double> metrics; ///< params, mult_adds, seconds, ...
};

class NAS_API Evaluator {
 public:
  virtual ~Evaluator();
  /// Must not throw for a bad architecture: a child that diverges, runs out of memory or throws is
  /// a failed Evaluation with its reason. Throwing means the evaluator itself is broken (stops the search).
  virtual Evaluation evaluate(const Candidate& candidate) = 0;
};

/// What a search stage hands every evaluator beside its parameters: the space, and the data and
/// regularizers configured in the stage (empty where the stage has none; evaluators that train need them).
/// An evaluator's Context::run_dir is a folder of its stage's own, RUN_DIR/<stage>/ (it exists):
/// evaluator/train writes each child's metrics.jsonl to RUN_DIR/<stage>/<candidate index>/.
struct EvaluatorArgs {
  std::shared_ptr<const Space> space;
  std::shared_ptr<const Dataset> train_set;
  std::vector<std::shared_ptr<Regularizer>> regularizers;
};

template <>
struct KindOf<Evaluator> {
  static constexpr std::string_view name = "evaluator";
  using Args = EvaluatorArgs;
  using Ptr = std::unique_ptr<Evaluator>;
};

}  // namespace nas
