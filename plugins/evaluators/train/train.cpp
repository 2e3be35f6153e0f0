// evaluator/train: builds the child from the space and trains it with the training engine on the
// stage's dataset; the reward is its accuracy on the held-out validation split (the paper's reward).
// Multi-fidelity: a Candidate::fidelity f is epochs: the child trains to the end of epoch f on the
// schedule of the recipe's epochs and checkpoints to <stage folder>/<index>/checkpoint.pt, from which
// a promotion (on any worker that sees the run directory) continues; reaching the recipe's epochs
// removes it.
#include <chrono>
#include <filesystem>

#include <c10/util/Exception.h>

#include "nas/dataset.hpp"
#include "nas/evaluator.hpp"
#include "nas/log.hpp"
#include "nas/plugin.hpp"
#include "nas/recipe.hpp"
#include "nas/regularizer.hpp"
#include "nas/space.hpp"

namespace {


class TrainEvaluator final : public nas::Evaluator {
 public:
  TrainEvaluator(nas::Params recipe, const nas::Context& context, nas::EvaluatorArgs args)
      : recipe_(std::move(recipe)), context_(context), args_(std::move(args)) {
    if (!args_.train_set)
      throw nas::UsageError("evaluator/train: the search stage has no dataset; add `dataset: {plugin: ...}` to it");
    if (nas::options_from<nas::DataOptions>(recipe_).validation <= 0)
      throw nas::UsageError("evaluator/train: validation must be at least 1 (the reward is the held-out accuracy)");
  }

  nas::Evaluation evaluate(const nas::Candidate& candidate) override {
    // A fidelity this evaluator cannot give is the config's fault, not the child's: it stops the search.
    const std::int64_t epochs = nas::options_from<nas::TrainOptions>(recipe_).epochs;
    if (candidate.fidelity > epochs)
      throw nas::UsageError(fmt::format("evaluator/train: fidelity {} is more than the recipe's {} epochs; set the "
                                        "scheduler's max_fidelity to at most epochs", candidate.fidelity, epochs));
    if (candidate.fidelity > 0 && context_.run_dir.empty())
      throw nas::UsageError("evaluator/train: multi-fidelity needs a run directory for the children's checkpoints");
    nas::Evaluation out;
    const auto start = std::chrono::steady_clock::now();
    try {
      // The child's epoch lines would drown the search's progress; warnings (divergence) still show.
      nas::Logger quiet(nas::Logger::Level::warn);
      nas::Context child_context{.log = quiet, .seed = context_.seed, .device = context_.device, .registry = context_.registry};
      if (!context_.run_dir.empty()) {  // the child's learning curve: <stage folder>/<index>/metrics.jsonl
        child_context.run_dir = context_.run_dir / std::to_string(candidate.index);
        std::filesystem::create_directories(child_context.run_dir);
      }
      std::vector<nas::Regularizer*> regularizers;
      for (const auto& r : args_.regularizers) regularizers.push_back(r.get());
      const std::filesystem::path checkpoint =
          candidate.fidelity > 0 ? child_context.run_dir / "checkpoint.pt" : std::filesystem::path();
      nas::ChildTraining child(*args_.space, candidate.genotype, recipe_, *args_.train_set, regularizers, child_context,
                               nas::derive_seed(context_.seed, nas::stream("child"), static_cast<std::uint64_t>(candidate.index)),
                               checkpoint);
      out.metrics["params"] = static_cast<double>(child.cost().params);
      out.metrics["mult_adds"] = static_cast<double>(child.cost().mult_adds);
      nas::TrainResult result = child.fit(candidate.fidelity);
      if (candidate.fidelity == epochs) std::filesystem::remove(checkpoint);  // in full: never continued
      out.metrics["steps"] = static_cast<double>(result.steps);
      out.metrics["train_top1"] = result.train.top1;
      out.metrics["images_per_second"] = result.images_per_second;
      if (result.diverged) {
        out.failure = fmt::format("diverged at step {}", result.diverged_step);
      } else {
        out.reward = result.validation.top1;
        out.metrics["validation_loss"] = result.validation.loss;
      }
    } catch (const c10::OutOfMemoryError& e) {
      out.failure = fmt::format("out of memory: {}", first_line(e.what()));
    } catch (const std::exception& e) {
      out.failure = first_line(e.what());
    }
    out.metrics["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return out;
  }

 private:
  static std::string first_line(std::string_view text) { return std::string(text.substr(0, text.find('\n'))); }

  nas::Params recipe_;
  nas::Context context_;
  nas::EvaluatorArgs args_;
};

void register_all(nas::Registrar& r) {
  r.add<nas::Evaluator>("train",
                        "trains the child on the stage's dataset (the training recipe's parameters); reward: "
                        "validation accuracy",
                        nas::recipe_schema(),
                        [](const nas::Params& p, const nas::Context& context, const nas::EvaluatorArgs& args) {
                          return std::make_unique<TrainEvaluator>(p, context, args);
                        },
                        {std::string(nas::capability::trains_recipe), std::string(nas::capability::multi_fidelity)});
}

}  // namespace

NAS_PLUGIN("train-evaluator", "0.1.0", register_all)
