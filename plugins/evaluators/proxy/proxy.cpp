// evaluator/proxy: a zero-cost proxy as the reward (nas/proxies.hpp): the child is built from the
// space at the stage's model size, initialized from its seed, and scored untrained on the same few
// batches of the stage's dataset for every child. Seconds per child instead of a training.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

#include "nas/cost.hpp"
#include "nas/data.hpp"
#include "nas/dataset.hpp"
#include "nas/evaluator.hpp"
#include "nas/options.hpp"
#include "nas/plugin.hpp"
#include "nas/proxies.hpp"
#include "nas/seed.hpp"
#include "nas/space.hpp"

namespace {

struct Options {
  std::string proxy = "synflow";
  std::int64_t batch_size = 64;
  std::int64_t batches = 1;
  bool normalize = true;

  static auto fields() {
    using O = Options;
    return std::tuple{
        nas::field("proxy", &O::proxy).one_of(nas::proxy_names()).help("the score: synflow, naswot, grad_norm or snip"),
        nas::field("batch_size", &O::batch_size).range(2, 4096).help("examples per batch (naswot's kernel is batch x batch)"),
        nas::field("batches", &O::batches).range(1, 1000).help("batches the score is averaged over"),
        nas::field("normalize", &O::normalize).help("normalize with the dataset's per-channel mean and std")};
  }
};

class ProxyEvaluator final : public nas::Evaluator {
 public:
  ProxyEvaluator(nas::Params params, const nas::Context& context, nas::EvaluatorArgs args)
      : params_(std::move(params)), options_(nas::options_from<Options>(params_)), context_(context),
        args_(std::move(args)) {
    if (!args_.train_set)
      throw nas::UsageError("evaluator/proxy: the search stage has no dataset; add `dataset: {plugin: ...}` to it");
    const nas::DatasetInfo info = args_.train_set->info();
    shape_ = {static_cast<std::int64_t>(info.class_names.size()), info.channels, info.height, info.width};
    // The same examples for every child: drawn once from the experiment seed.
    std::vector<std::int64_t> order(static_cast<std::size_t>(args_.train_set->size()));
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::int64_t>(i);
    std::mt19937_64 rng(nas::derive_seed(context.seed, nas::stream("proxy batches"), 0));
    std::shuffle(order.begin(), order.end(), rng);
    order.resize(std::min<std::size_t>(order.size(), static_cast<std::size_t>(options_.batch_size * options_.batches)));
    nas::LoaderOptions loading;
    loading.batch_size = options_.batch_size;
    loading.workers = 0;
    if (options_.normalize) {
      loading.mean = info.mean;
      loading.std = info.std;
    }
    const nas::Loader loader(*args_.train_set, order, loading, context.seed);
    for (std::int64_t b = 0; b < loader.batches_per_epoch(); ++b) batches_.push_back(loader.batch(0, b));
  }

  nas::Evaluation evaluate(const nas::Candidate& candidate) override {
    nas::Evaluation out;
    const auto start = std::chrono::steady_clock::now();
    try {
      // The child's initial weights: the same seed as evaluator/train gives it.
      at::manual_seed(nas::derive_seed(context_.seed, nas::stream("child"), static_cast<std::uint64_t>(candidate.index)));
      std::shared_ptr<nas::Network> network = args_.space->build(candidate.genotype, params_, shape_);
      network->to(context_.device);
      const nas::ModelCost cost = nas::measure_cost(*network, {shape_.channels, shape_.height, shape_.width});
      out.metrics["params"] = static_cast<double>(cost.params);
      out.metrics["mult_adds"] = static_cast<double>(cost.mult_adds);
      double sum = 0;
      for (const nas::Batch& batch : batches_)
        sum += nas::proxy_score(*network, options_.proxy, batch.images.to(context_.device), batch.labels.to(context_.device));
      const double score = sum / static_cast<double>(batches_.size());
      if (std::isfinite(score))
        out.reward = score;
      else if (options_.proxy == "naswot")  // log det of a singular kernel: two examples look alike to every ReLU
        out.failure = fmt::format("naswot is {}: some examples have the same activation pattern (e.g. a cell whose "
                                  "output does not depend on its input)", score);
      else
        out.failure = fmt::format("{} is not finite ({})", options_.proxy, score);
    } catch (const std::exception& e) {
      const std::string_view what = e.what();
      out.failure = std::string(what.substr(0, what.find('\n')));
    }
    out.metrics["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return out;
  }

 private:
  nas::Params params_;
  Options options_;
  nas::Context context_;
  nas::EvaluatorArgs args_;
  nas::DataShape shape_;
  std::vector<nas::Batch> batches_;
};

void register_all(nas::Registrar& r) {
  r.add<nas::Evaluator>("proxy",
                        "a zero-cost proxy of the untrained child as its reward (synflow, naswot, grad_norm, snip) on "
                        "a few batches of the stage's dataset",
                        nas::schema_of<Options>(),
                        [](const nas::Params& p, const nas::Context& context, const nas::EvaluatorArgs& args) {
                          return std::make_unique<ProxyEvaluator>(p, context, args);
                        },
                        {std::string(nas::capability::builds_networks)});
}

}  // namespace

NAS_PLUGIN("proxy-evaluator", "0.1.0", register_all)
