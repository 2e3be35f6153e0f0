// The plugins shipped in plugins/: each created through the registry, as a stage would.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fmt/ranges.h>

#include "nas/controller.hpp"
#include "nas/dataset.hpp"
#include "nas/loader.hpp"
#include "nas/op.hpp"
#include "nas/error.hpp"
#include "nas/log.hpp"
#include "nas/regularizer.hpp"
#include "nas/space.hpp"
#include "support.hpp"

namespace {

class PluginTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { registry_ = &nas::test::plugins(); }
  nas::Context context(std::uint64_t seed) { return nas::Context{.log = log_, .seed = seed}; }

  static const nas::Registry* registry_;
  nas::Logger log_{nas::Logger::Level::error};
};
const nas::Registry* PluginTest::registry_ = nullptr;
using nas::test::params;

const std::vector<nas::Decision> kDecisions{{"a", 2}, {"b", 3}, {"c", 7}, {"d", 1}};

TEST_F(PluginTest, RandomControllerProposesValidDecisionsDeterministically) {
  auto a = registry_->create<nas::Controller>("random", params("controller/random"), context(5), {kDecisions});
  auto b = registry_->create<nas::Controller>("random", params("controller/random"), context(5), {kDecisions});
  auto other = registry_->create<nas::Controller>("random", params("controller/random"), context(6), {kDecisions});
  std::vector<nas::Proposal> pa = a->propose(50), pb = b->propose(50), po = other->propose(50);
  std::vector<std::vector<std::int64_t>> seen_a, seen_o;
  for (std::size_t i = 0; i < pa.size(); ++i) {
    ASSERT_EQ(pa[i].decisions.size(), kDecisions.size());
    for (std::size_t d = 0; d < kDecisions.size(); ++d) {
      EXPECT_GE(pa[i].decisions[d], 0);
      EXPECT_LT(pa[i].decisions[d], kDecisions[d].choices);
    }
    EXPECT_EQ(pa[i].decisions, pb[i].decisions);
    seen_a.push_back(pa[i].decisions);
    seen_o.push_back(po[i].decisions);
  }
  EXPECT_NE(seen_a, seen_o) << "another seed must give other proposals";
}

TEST_F(PluginTest, RandomControllerStateRoundTrips) {
  auto a = registry_->create<nas::Controller>("random", params("controller/random"), context(1), {kDecisions});
  a->propose(3);
  std::string state = a->save_state();
  auto b = registry_->create<nas::Controller>("random", params("controller/random"), context(99), {kDecisions});
  b->load_state(state);
  EXPECT_EQ(a->propose(10)[9].decisions, b->propose(10)[9].decisions);
  EXPECT_THROW(b->load_state("not a state"), nas::Error);
}

TEST_F(PluginTest, SyntheticDatasetIsDeterministicShapedAndLearnable) {
  nas::Params p = params("dataset/synthetic", {{"size", std::int64_t{400}}, {"channels", std::int64_t{2}},
                                               {"height", std::int64_t{5}}, {"width", std::int64_t{7}},
                                               {"classes", std::int64_t{4}}, {"signal", 0.9}});
  auto train = registry_->create<nas::Dataset>("synthetic", p, context(3), {nas::Split::train});
  auto again = registry_->create<nas::Dataset>("synthetic", p, context(3), {nas::Split::train});
  auto test = registry_->create<nas::Dataset>("synthetic", p, context(3), {nas::Split::test});
  EXPECT_EQ(train->size(), 400);
  EXPECT_EQ(train->info().class_names.size(), 4u);
  nas::Example e = train->get(17);
  EXPECT_EQ(e.image.sizes(), (std::vector<std::int64_t>{2, 5, 7}));
  EXPECT_TRUE(torch::equal(e.image, again->get(17).image));
  EXPECT_EQ(e.label, again->get(17).label);
  EXPECT_FALSE(torch::equal(e.image, test->get(17).image)) << "splits must differ";
  EXPECT_GE(e.image.min().item<float>(), 0.f);
  EXPECT_LE(e.image.max().item<float>(), 1.f);
  // Learnable: the nearest class mean (from train) classifies test images far above chance (25%).
  torch::Tensor means = torch::zeros({4, 70}), counts = torch::zeros({4});
  for (std::int64_t i = 0; i < 400; ++i) {
    nas::Example x = train->get(i);
    means[x.label] += x.image.flatten();
    counts[x.label] += 1;
  }
  means /= counts.unsqueeze(1);
  int correct = 0;
  for (std::int64_t i = 0; i < 100; ++i) {
    nas::Example x = test->get(i);
    correct += (means - x.image.flatten()).square().sum(1).argmin().item<std::int64_t>() == x.label;
  }
  EXPECT_GT(correct, 90);
  EXPECT_THROW(train->get(400), nas::Error);
}

TEST_F(PluginTest, CutoutZeroesAtMostOneSquarePerImage) {
  auto cutout = registry_->create<nas::Regularizer>("cutout", params("regularizer/cutout", {{"size", std::int64_t{4}}}),
                                                    context(0), {});
  torch::Tensor images = torch::ones({64, 3, 10, 10});
  cutout->on_batch(images, {7, 100});
  int clipped = 0;
  for (std::int64_t n = 0; n < 64; ++n) {
    torch::Tensor zero = images[n] == 0;
    std::int64_t zeros = zero.sum().item<std::int64_t>();
    EXPECT_GT(zeros, 0);
    EXPECT_LE(zeros, 3 * 4 * 4);
    EXPECT_TRUE(torch::equal(zero[0], zero[1])) << "all channels of a pixel are cut together";
    clipped += zeros < 3 * 4 * 4;
  }
  EXPECT_GT(clipped, 0) << "squares near the border are clipped";
  EXPECT_LT(clipped, 64);
  // The squares depend on the seed and the step only: a resumed run cuts the same ones.
  torch::Tensor again = torch::ones({64, 3, 10, 10}), next = torch::ones({64, 3, 10, 10});
  cutout->on_batch(again, {7, 100});
  cutout->on_batch(next, {8, 100});
  EXPECT_TRUE(torch::equal(again, images));
  EXPECT_FALSE(torch::equal(next, images));
}

const char* const kNasnetOps[] = {"identity",     "conv_1x3_3x1", "conv_1x7_7x1", "dil_conv_3x3", "avg_pool_3x3",
                                   "max_pool_3x3", "max_pool_5x5", "max_pool_7x7", "conv_1x1",     "conv_3x3",
                                   "sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7"};

std::int64_t parameter_count(const nas::Op& op) {
  std::int64_t n = 0;
  for (const auto& p : op.parameters()) n += p.numel();
  return n;
}

TEST_F(PluginTest, EveryNasnetOpHasTheRightShapeForEveryStrideAndWidth) {
  torch::manual_seed(0);
  for (const char* name : kNasnetOps)
    for (std::int64_t stride : {1, 2})
      for (std::int64_t out : {6, 10}) {
        SCOPED_TRACE(fmt::format("{} stride {} 6->{}", name, stride, out));
        auto op = registry_->create<nas::Op>(name, nas::Params(), context(0), {6, out, stride});
        torch::Tensor x = torch::randn({2, 6, 9, 9}, torch::requires_grad());
        torch::Tensor y = op->forward(x);
        // "same" padding: ceil(9 / stride) either way.
        EXPECT_EQ(y.sizes(), (std::vector<std::int64_t>{2, out, stride == 1 ? 9 : 5, stride == 1 ? 9 : 5}));
        (y * torch::randn_like(y)).sum().backward();
        ASSERT_TRUE(x.grad().defined());
        EXPECT_GT(x.grad().abs().sum().item<double>(), 0) << "gradient reaches the input";
        for (const auto& p : op->parameters()) {
          ASSERT_TRUE(p.grad().defined());
          EXPECT_GT(p.grad().abs().sum().item<double>(), 0) << "gradient reaches every parameter";
        }
      }
}

TEST_F(PluginTest, NasnetOpsFollowTheTfConventions) {
  auto make = [&](const char* name, std::int64_t in, std::int64_t out, std::int64_t stride) {
    return registry_->create<nas::Op>(name, nas::Params(), context(0), {in, out, stride});
  };
  EXPECT_EQ(parameter_count(*make("identity", 8, 8, 1)), 0);
  EXPECT_EQ(parameter_count(*make("identity", 8, 8, 2)), 8 * 8 + 2 * 8);  // ReLU-1x1conv-BN
  EXPECT_EQ(parameter_count(*make("max_pool_3x3", 8, 8, 2)), 0);
  EXPECT_EQ(parameter_count(*make("avg_pool_3x3", 4, 8, 1)), 4 * 8 + 2 * 8);  // 1x1conv-BN after the pool
  // Separable: (depthwise kxk + pointwise + BN) twice, no biases.
  EXPECT_EQ(parameter_count(*make("sep_conv_3x3", 8, 8, 1)), 2 * (9 * 8 + 8 * 8 + 2 * 8));
  EXPECT_EQ(parameter_count(*make("sep_conv_5x5", 4, 8, 1)), (25 * 4 + 4 * 8 + 16) + (25 * 8 + 8 * 8 + 16));
  EXPECT_EQ(parameter_count(*make("conv_1x7_7x1", 4, 8, 1)), 7 * 4 * 8 + 7 * 8 * 8 + 2 * 8);
  EXPECT_EQ(parameter_count(*make("dil_conv_3x3", 4, 8, 1)), 9 * 4 * 8 + 2 * 8);
  // An identity that can be one returns its input unchanged.
  torch::Tensor x = torch::randn({1, 8, 4, 4});
  EXPECT_TRUE(torch::equal(make("identity", 8, 8, 1)->forward(x), x));
  // TF's "same" average pool ignores the padding: a constant image stays constant at the border.
  torch::Tensor ones = torch::ones({1, 8, 4, 4});
  EXPECT_TRUE(torch::allclose(make("avg_pool_3x3", 8, 8, 1)->forward(ones), ones));
  EXPECT_THROW(make("conv_3x3", 8, 8, 3), nas::Error);
}

}  // namespace

namespace {

// Records what a regularizer sets; the rest of the network is not needed here.
class RecordingNetwork final : public nas::Network, public nas::DropPathCells {
 public:
  explicit RecordingNetwork(std::int64_t cells) : cells_(cells) {}
  nas::NetworkOutput forward(const at::Tensor&) override { return {}; }
  nas::DropPathCells* drop_path_cells() override { return this; }
  std::int64_t num_cells() const override { return cells_; }
  void set_drop_path_keep(const std::vector<double>& keep) override { keep_ = keep; }
  std::vector<std::pair<std::string, std::vector<std::int64_t>>> stage_shapes(const at::Tensor&) override { return {}; }
  std::vector<double> keep_;

 private:
  std::int64_t cells_;
};

TEST_F(PluginTest, ScheduledDropPathFollowsTheFormulaInDepthAndTime) {
  auto regularizer = registry_->create<nas::Regularizer>(
      "scheduled_drop_path", params("regularizer/scheduled_drop_path", {{"keep_prob", 0.6}}), context(0), {});
  RecordingNetwork network(8);
  for (std::int64_t step : {0, 250, 500, 1000, 2000}) {
    regularizer->on_step(network, {step, 1000});
    ASSERT_EQ(network.keep_.size(), 8u);
    double progress = std::min(1.0, step / 1000.0);
    for (int i = 0; i < 8; ++i) {
      double keep_cell = 1 - (i + 1) / 8.0 * (1 - 0.6);
      EXPECT_DOUBLE_EQ(network.keep_[i], 1 - progress * (1 - keep_cell)) << "cell " << i << " step " << step;
    }
  }
  EXPECT_DOUBLE_EQ(network.keep_.back(), 0.6) << "the last cell reaches keep_prob at the end";
  EXPECT_DOUBLE_EQ(network.keep_.front(), 1 - 1 / 8.0 * 0.4);
}

TEST_F(PluginTest, DropPathKeepsTheExpectation) {
  torch::manual_seed(0);
  torch::Tensor x = torch::rand({20000, 3, 2, 2}) + 1;
  torch::Tensor y = nas::drop_path(x, 0.7);
  torch::Tensor dropped = (y.flatten(1).abs().sum(1) == 0).to(torch::kFloat);
  EXPECT_NEAR(dropped.mean().item<double>(), 0.3, 0.015) << "whole examples are dropped with probability 1 - keep";
  EXPECT_NEAR(y.mean().item<double>(), x.mean().item<double>(), 0.02) << "and the rest scaled by 1/keep";
  torch::Tensor kept = y.flatten(1).abs().sum(1) > 0;
  EXPECT_TRUE(torch::allclose(y.index({kept}), x.index({kept}) / 0.7));
}

TEST_F(PluginTest, ConcatChannelsGivesEachInputItsGradientInItsOwnLayout) {
  torch::manual_seed(0);
  auto channels_last = torch::MemoryFormat::ChannelsLast;
  torch::Tensor leaf = torch::randn({2, 5, 4, 5}).requires_grad_();
  // Inputs inside a graph, as in a cell: their gradients arrive as the hooks see them (a leaf's
  // would be copied into the leaf's layout anyway).
  torch::Tensor a = leaf.slice(1, 0, 3).contiguous(channels_last), b = leaf.slice(1, 3, 5).contiguous();
  torch::Tensor grad_a, grad_b;
  a.register_hook([&](torch::Tensor g) { grad_a = g; });
  b.register_hook([&](torch::Tensor g) { grad_b = g; });
  torch::Tensor weights = torch::randn({2, 5, 4, 5});
  torch::Tensor y = nas::concat_channels({a, b});
  EXPECT_TRUE(torch::equal(y, torch::cat({a, b}, 1)));
  (y * weights).sum().backward();
  EXPECT_TRUE(torch::equal(grad_a, weights.slice(1, 0, 3)));
  EXPECT_TRUE(torch::equal(grad_b, weights.slice(1, 3, 5)));
  EXPECT_TRUE(grad_a.is_contiguous(channels_last)) << "not a strided slice of the output's gradient";
  EXPECT_TRUE(grad_b.is_contiguous());
  EXPECT_TRUE(torch::equal(leaf.grad(), weights));
}

// The factorized reduction's two grids: what padding right and bottom and slicing give, values and
// gradients, with each gradient in the input's own layout (slicing's comes back NCHW).
TEST_F(PluginTest, EverySecondPixelSamplesAsPaddedSlicingWithTheGradientInTheInputsLayout) {
  using torch::indexing::None;
  using torch::indexing::Slice;
  torch::manual_seed(0);
  for (const auto format : {torch::MemoryFormat::Contiguous, torch::MemoryFormat::ChannelsLast})
    for (const std::vector<std::int64_t> size : {std::vector<std::int64_t>{2, 3, 6, 4}, {2, 3, 5, 7}, {1, 2, 1, 1}})
      for (const std::int64_t offset : {0, 1}) {
        const std::string where = fmt::format("size {}, offset {}, channels_last {}", fmt::join(size, "x"), offset,
                                              format == torch::MemoryFormat::ChannelsLast);
        const torch::Tensor x = torch::randn(size).contiguous(format).requires_grad_();
        torch::Tensor input = x * 1, grad;  // inside a graph, as in a cell: its gradient as a hook sees it
        input.register_hook([&](torch::Tensor g) { grad = g; });
        const torch::Tensor y = nas::every_second_pixel(input, offset);
        const torch::Tensor expected = torch::constant_pad_nd(x.detach(), {0, 1, 0, 1})
                                           .index({Slice(), Slice(), Slice(offset, None, 2), Slice(offset, None, 2)})
                                           .slice(2, 0, (size[2] + 1) / 2)
                                           .slice(3, 0, (size[3] + 1) / 2);
        ASSERT_TRUE(torch::equal(y, expected)) << where;
        EXPECT_TRUE(y.is_contiguous(format)) << where;
        const torch::Tensor weights = torch::randn(y.sizes());
        (y * weights).sum().backward();
        torch::Tensor expected_grad = torch::zeros(size);
        expected_grad.index_put_({Slice(), Slice(), Slice(offset, None, 2), Slice(offset, None, 2)},
                                 weights.index({Slice(), Slice(), Slice(0, (size[2] - offset + 1) / 2),
                                                Slice(0, (size[3] - offset + 1) / 2)}));
        EXPECT_TRUE(torch::equal(grad, expected_grad)) << where;
        EXPECT_TRUE(grad.is_contiguous(format)) << where;
      }
  EXPECT_THROW(nas::every_second_pixel(torch::zeros({2, 3, 4}), 0), nas::UsageError);
  EXPECT_THROW(nas::every_second_pixel(torch::zeros({2, 3, 4, 4}), 2), nas::UsageError);
}

}  // namespace
