// Zero-cost proxies: each against a value computed independently in PyTorch on a tiny fixed network
// (tests/unit/proxies_reference.py builds the same network, weights and batch), the network left as it
// was, determinism, and evaluator/proxy on both spaces.
#include <algorithm>
#include <cmath>
#include <random>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "nas/evaluator.hpp"
#include "nas/log.hpp"
#include "nas/proxies.hpp"
#include "nas/space.hpp"
#include "support.hpp"

namespace {

using ::testing::HasSubstr;
using nas::test::params;
using nas::test::plugins;

// conv 3x3 (3 -> 4) - BN - ReLU - conv 1x1 (4 -> 4) - ReLU - global mean - linear (4 -> 3), every
// parameter k filled with 0.5 sin(0.7 i + k) in order, as proxies_reference.py does.
class Tiny final : public nas::Network {
 public:
  Tiny()
      : conv1_(register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 4, 3).padding(1).bias(false)))),
        bn1_(register_module("bn1", torch::nn::BatchNorm2d(4))),
        conv2_(register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(4, 4, 1).bias(false)))),
        fc_(register_module("fc", torch::nn::Linear(4, 3))) {
    torch::NoGradGuard no_grad;
    double k = 0;
    for (at::Tensor& p : parameters()) {
      at::Tensor i = torch::arange(p.numel(), torch::kDouble);
      p.copy_((0.5 * torch::sin(0.7 * i + k)).reshape(p.sizes()));
      ++k;
    }
  }
  nas::NetworkOutput forward(const at::Tensor& x) override {
    at::Tensor h = torch::relu(bn1_(conv1_(x)));
    h = torch::relu(conv2_(h));
    return {fc_(h.mean({2, 3})), {}};
  }
  std::vector<std::pair<std::string, std::vector<std::int64_t>>> stage_shapes(const at::Tensor& x) override {
    return {{"logits", forward(x).logits.sizes().vec()}};
  }

 private:
  torch::nn::Conv2d conv1_;
  torch::nn::BatchNorm2d bn1_;
  torch::nn::Conv2d conv2_;
  torch::nn::Linear fc_;
};

at::Tensor images() { return torch::cos(0.3 * torch::arange(4 * 3 * 5 * 5, torch::kFloat)).reshape({4, 3, 5, 5}); }
at::Tensor labels() { return torch::tensor(std::vector<std::int64_t>{0, 1, 2, 1}); }

TEST(ProxyTest, EachProxyIsWhatItsPaperDefines) {
  // From `python3 tests/unit/proxies_reference.py` (PyTorch 2.15, float32; synflow in float64).
  const std::map<std::string, double> reference{
      {"grad_norm", 0.1575619243}, {"snip", 0.09538587648}, {"synflow", 27.54284998}, {"naswot", 18.15364089}};
  ASSERT_EQ(nas::proxy_names().size(), reference.size());
  for (const std::string& name : nas::proxy_names()) {
    Tiny net;
    EXPECT_NEAR(nas::proxy_score(net, name, images(), labels()), reference.at(name), 1e-5 * reference.at(name)) << name;
  }
}

TEST(ProxyTest, ScoresLeaveTheNetworkAsItWasAndRepeat) {
  Tiny net;
  net.eval();
  std::vector<at::Tensor> before;
  for (const at::Tensor& t : net.parameters()) before.push_back(t.clone());
  for (const at::Tensor& t : net.buffers()) before.push_back(t.clone());
  for (const std::string& name : nas::proxy_names()) {
    const double first = nas::proxy_score(net, name, images(), labels());
    EXPECT_EQ(nas::proxy_score(net, name, images(), labels()), first) << name << ": the same score twice";
  }
  EXPECT_FALSE(net.is_training()) << "the mode is restored";
  std::size_t i = 0;
  for (const at::Tensor& t : net.parameters()) {
    EXPECT_TRUE(torch::equal(t, before[i++])) << "a weight changed";
    EXPECT_FALSE(t.grad().defined()) << "a gradient was left behind";
    EXPECT_EQ(t.scalar_type(), torch::kFloat);
  }
  for (const at::Tensor& t : net.buffers()) EXPECT_TRUE(torch::equal(t, before[i++])) << "batch norm's statistics changed";
}

TEST(ProxyTest, AnUnknownProxyNamesTheKnownOnes) {
  Tiny net;
  try {
    nas::proxy_score(net, "jacob", images(), labels());
    FAIL() << "scored an unknown proxy";
  } catch (const nas::UsageError& e) {
    EXPECT_THAT(e.what(), HasSubstr("unknown proxy 'jacob'; expected one of: synflow, naswot, grad_norm, snip"));
  }
}

// evaluator/proxy builds each child from the space at the section's model size and scores it on the
// stage's data: the same reward for the same child and seed, whatever else it evaluated before.
class ProxyEvaluatorTest : public ::testing::TestWithParam<std::string> {
 protected:
  nas::Logger log_{nas::Logger::Level::error};
};

TEST_P(ProxyEvaluatorTest, TheSameChildScoresTheSameOnBothSpaces) {
  const std::string space_name = GetParam();
  const nas::Context context{.log = log_, .seed = 4, .registry = &plugins()};
  std::shared_ptr<const nas::Space> space =
      plugins().create<nas::Space>(space_name, params("space/" + space_name), context, {});
  std::shared_ptr<const nas::Dataset> data = nas::test::dataset(
      context, "synthetic", {{"size", std::int64_t{64}}, {"height", std::int64_t{16}}, {"width", std::int64_t{16}}});
  std::map<std::string, nas::Value, std::less<>> values = nas::test::model("space/" + space_name).values();
  values["N"] = std::int64_t{1};
  values["F"] = std::int64_t{16};
  std::mt19937_64 rng(1);
  const auto decisions = space->decisions();
  std::vector<nas::Candidate> children;
  for (std::int64_t i = 0; i < 3; ++i) {
    std::vector<std::int64_t> d = nas::sample_decisions(decisions, rng);
    // No `none` edge in a NAS-Bench-201 cell (choice 0): a cell of none edges outputs zeros (see below).
    if (space_name == "nasbench201") std::replace(d.begin(), d.end(), std::int64_t{0}, std::int64_t{3});
    const std::string genotype = space->decode(d);
    children.push_back({i, {}, genotype, nas::architecture_hash(*space, genotype)});
  }
  for (const std::string& proxy : nas::proxy_names()) {
    auto p = params("evaluator/proxy", {{"proxy", proxy}, {"batch_size", std::int64_t{16}}});
    for (const auto& [key, value] : p.values()) values[key] = value;
    auto evaluator = plugins().create<nas::Evaluator>("proxy", nas::Params(values), context, {space, data, {}});
    std::vector<double> first;
    for (const nas::Candidate& c : children) {
      const nas::Evaluation e = evaluator->evaluate(c);
      ASSERT_TRUE(e.reward) << proxy << ": " << e.failure;
      EXPECT_TRUE(std::isfinite(*e.reward));
      EXPECT_GT(e.metrics.at("params"), 0);
      first.push_back(*e.reward);
    }
    auto again = plugins().create<nas::Evaluator>("proxy", nas::Params(values), context, {space, data, {}});
    for (std::size_t i = children.size(); i-- > 0;)  // in the other order, by another evaluator
      EXPECT_EQ(*again->evaluate(children[i]).reward, first[i]) << proxy << " child " << i;
  }
}

TEST(ProxyEvaluatorTest, ACellThatIgnoresItsInputFailsNaswotWithTheReason) {
  nas::Logger log(nas::Logger::Level::error);
  const nas::Context context{.log = log, .seed = 4, .registry = &plugins()};
  std::shared_ptr<const nas::Space> space = plugins().create<nas::Space>("nasbench201", params("space/nasbench201"), context, {});
  std::shared_ptr<const nas::Dataset> data = nas::test::dataset(
      context, "synthetic", {{"size", std::int64_t{64}}, {"height", std::int64_t{16}}, {"width", std::int64_t{16}}});
  std::map<std::string, nas::Value, std::less<>> values = nas::test::model("space/nasbench201").values();
  values["N"] = std::int64_t{1};
  values["F"] = std::int64_t{16};
  const nas::Params own = params("evaluator/proxy", {{"proxy", std::string("naswot")}});
  for (const auto& [key, value] : own.values()) values[key] = value;
  auto evaluator = plugins().create<nas::Evaluator>("proxy", nas::Params(values), context, {space, data, {}});
  const std::string none = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|";
  const nas::Evaluation e = evaluator->evaluate({0, {}, none, nas::architecture_hash(*space, none)});
  EXPECT_FALSE(e.reward);
  EXPECT_THAT(e.failure, HasSubstr("naswot is -inf: some examples have the same activation pattern"));
}

INSTANTIATE_TEST_SUITE_P(Spaces, ProxyEvaluatorTest, ::testing::Values("nasnet", "nasbench201"));

}  // namespace
