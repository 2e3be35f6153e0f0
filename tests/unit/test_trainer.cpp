// The training engine: it learns, it is deterministic, a killed run resumes to the same weights,
// divergence is a result, and the weights are readable from Python.
#include <fstream>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include "nas/loader.hpp"
#include "nas/log.hpp"
#include "nas/trainer.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using ::testing::HasSubstr;

namespace {

class TrainerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { registry_ = &nas::test::plugins(); }
  void SetUp() override {
    space_ = registry_->create<nas::Space>("nasnet", nas::test::params("space/nasnet"), context_, {});
    genotype_ = nas::test::read_text(fs::path(nas::test::paths::source) / "configs/genotypes/nasnet_a.yaml");
  }

  std::unique_ptr<nas::Dataset> dataset(const std::string& name, std::map<std::string, nas::Value, std::less<>> params,
                                        nas::Split split = nas::Split::train) {
    return nas::test::dataset(context_, name, std::move(params), split);
  }
  std::shared_ptr<nas::Network> network(std::int64_t channels, std::int64_t classes, std::uint64_t seed = 0) {
    torch::manual_seed(seed);
    return space_->build(genotype_, nas::test::model("space/nasnet", {{"N", std::int64_t{1}}, {"F", std::int64_t{24}}}),
                         {classes, channels, 32, 32});
  }
  // A training loader (seed 4) over `images` synthetic size x size images in batches of `batch`; the
  // fixture keeps the dataset alive.
  nas::Loader synthetic_loader(std::int64_t images, std::int64_t batch, std::int64_t size = 8, bool augment = false) {
    datasets_.push_back(dataset("synthetic", {{"size", images}, {"height", size}, {"width", size}}));
    nas::LoaderOptions o;
    o.batch_size = batch;
    o.train = true;
    if (augment) o.augmentation = {1, true};
    return nas::Loader(*datasets_.back(), range(images), o, 4);
  }
  static std::vector<std::int64_t> range(std::int64_t n) {
    std::vector<std::int64_t> v(static_cast<std::size_t>(n));
    std::iota(v.begin(), v.end(), 0);
    return v;
  }
  static bool same_weights(nas::Network& a, nas::Network& b) {
    auto pa = a.parameters(), pb = b.parameters();
    for (std::size_t i = 0; i < pa.size(); ++i)
      if (!torch::equal(pa[i], pb[i])) return false;
    return true;
  }

  static const nas::Registry* registry_;
  nas::Logger log_{nas::Logger::Level::error};
  nas::Context context_{.log = log_, .seed = 3, .registry = registry_};
  std::unique_ptr<nas::Space> space_;
  std::vector<std::unique_ptr<nas::Dataset>> datasets_;
  std::string genotype_;
  nas::test::ScratchDir scratch_;
  const fs::path& dir_ = scratch_.path();
};
const nas::Registry* TrainerTest::registry_ = nullptr;

TEST_F(TrainerTest, LearnsFashionMnistFarAboveChance) {
  if (!fs::exists("/usr/share/datasets/fashion-mnist")) GTEST_SKIP() << "Debian's dataset-fashion-mnist is absent";
  auto train = dataset("fashion_mnist", {}), test = dataset("fashion_mnist", {}, nas::Split::test);
  nas::LoaderOptions o;
  o.batch_size = 50;
  o.train = true;
  o.mean = {0.286};
  o.std = {0.353};
  nas::Loader train_loader(*train, nas::first_per_class(*train, range(train->size()), 100), o, 1);
  nas::LoaderOptions e = o;
  e.train = false;
  nas::Loader test_loader(*test, range(1000), e, 1);
  auto net = network(1, 10);
  nas::TrainOptions options;
  options.epochs = 3;
  options.lr = 0.1;
  nas::Trainer trainer(*net, options, {}, context_);
  nas::TrainResult result = trainer.fit(train_loader);
  EXPECT_FALSE(result.diverged);
  nas::Metrics m = trainer.evaluate(test_loader);
  EXPECT_EQ(m.examples, 1000);
  EXPECT_GT(m.top1, 0.5) << "chance is 0.1";
  EXPECT_GT(m.top5, m.top1);
}

TEST_F(TrainerTest, SameSeedSameWeights) {
  const nas::Loader loader = synthetic_loader(96, 16, 8, true);
  auto regularizer = [&] {
    return registry_->create<nas::Regularizer>("scheduled_drop_path", nas::test::params("regularizer/scheduled_drop_path"),
                                               context_, {});
  };
  auto train = [&](std::uint64_t seed) {
    auto net = network(3, 10, seed);
    auto drop = regularizer();
    torch::manual_seed(seed);
    nas::Trainer(*net, {}, {drop.get()}, context_).fit(loader);
    return net;
  };
  auto a = train(0), b = train(0), c = train(1);
  EXPECT_TRUE(same_weights(*a, *b));
  EXPECT_FALSE(same_weights(*a, *c));
}

TEST_F(TrainerTest, AKilledRunResumesToTheSameWeights) {
  const nas::Loader loader = synthetic_loader(64, 16, 8, true);
  nas::TrainOptions options;
  options.epochs = 3;
  auto drop = registry_->create<nas::Regularizer>("scheduled_drop_path", nas::test::params("regularizer/scheduled_drop_path"),
                                                  context_, {});

  auto uninterrupted = network(3, 10);
  torch::manual_seed(7);
  nas::Trainer(*uninterrupted, options, {drop.get()}, context_).fit(loader);

  fs::path checkpoint = dir_ / "checkpoint.pt";
  auto killed = network(3, 10);
  torch::manual_seed(7);
  nas::test::KillAt kill(6);  // in the second epoch (4 steps each), after the first epoch's checkpoint
  EXPECT_THROW(nas::Trainer(*killed, options, {drop.get(), &kill}, context_, checkpoint).fit(loader), std::runtime_error);
  ASSERT_TRUE(fs::exists(checkpoint));

  auto resumed = network(3, 10, 99);  // a fresh process: other initial weights, other RNG state
  torch::manual_seed(99);
  nas::TrainResult result = nas::Trainer(*resumed, options, {drop.get()}, context_, checkpoint).fit(loader);
  EXPECT_EQ(result.steps, 12);
  EXPECT_TRUE(same_weights(*uninterrupted, *resumed));
}

// Multi-fidelity: a child stopped after epoch 1 and promoted continues from its checkpoint, in
// another Trainer (a promotion on another worker), to exactly the weights and step count of a run
// that trained to the end of epoch 2 without stopping: the schedule is the recipe's 3 epochs in both.
TEST_F(TrainerTest, AStoppedChildContinuesFromItsCheckpointAsIfItNeverStopped) {
  const nas::Loader loader = synthetic_loader(64, 16);
  nas::TrainOptions options;
  options.epochs = 3;

  auto straight = network(3, 10);
  torch::manual_seed(7);
  nas::TrainResult two = nas::Trainer(*straight, options, {}, context_).fit(loader, &loader, 2);
  EXPECT_EQ(two.steps, 8);

  const fs::path checkpoint = dir_ / "child" / "checkpoint.pt";
  fs::create_directories(checkpoint.parent_path());
  auto stopped = network(3, 10);
  torch::manual_seed(7);
  EXPECT_EQ(nas::Trainer(*stopped, options, {}, context_, checkpoint).fit(loader, &loader, 1).steps, 4);
  ASSERT_TRUE(fs::exists(checkpoint));
  EXPECT_FALSE(same_weights(*straight, *stopped));

  auto promoted = network(3, 10, 99);
  torch::manual_seed(99);
  nas::TrainResult continued = nas::Trainer(*promoted, options, {}, context_, checkpoint).fit(loader, &loader, 2);
  EXPECT_EQ(continued.steps, 8);
  EXPECT_TRUE(same_weights(*straight, *promoted));
  EXPECT_EQ(continued.validation.top1, two.validation.top1);

  // A job started again at a fidelity its checkpoint has reached trains nothing and says where it stands.
  auto again = network(3, 10, 5);
  nas::TrainResult same = nas::Trainer(*again, options, {}, context_, checkpoint).fit(loader, &loader, 2);
  EXPECT_EQ(same.steps, 8);
  EXPECT_TRUE(same_weights(*straight, *again));
  EXPECT_EQ(same.validation.top1, two.validation.top1);
}

// A checkpoint of another network (another architecture or size, or an older version's) is not
// loaded into this one half-way: the run stops, naming the file and what to do.
TEST_F(TrainerTest, ACheckpointOfAnotherNetworkFailsClearly) {
  auto data = dataset("synthetic", {{"size", std::int64_t{16}}, {"height", std::int64_t{8}}, {"width", std::int64_t{8}}});
  nas::LoaderOptions o;
  o.batch_size = 16;
  nas::Loader loader(*data, range(16), o, 4);
  nas::TrainOptions options;
  options.epochs = 1;
  const fs::path checkpoint = dir_ / "checkpoint.pt";
  auto ten_classes = network(3, 10);
  nas::Trainer(*ten_classes, options, {}, context_, checkpoint).fit(loader);
  ASSERT_TRUE(fs::exists(checkpoint));
  auto three_classes = network(3, 3);
  try {
    nas::Trainer(*three_classes, options, {}, context_, checkpoint).fit(loader);
    FAIL() << "loaded";
  } catch (const nas::Error& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("cannot resume from checkpoint '" + checkpoint.string() +
                                               "': it does not match this network"));
    EXPECT_THAT(e.what(), ::testing::HasSubstr("delete it to start over"));
  }
}

TEST_F(TrainerTest, Bf16AutocastComputesTheForwardPassInBf16AndKeepsFp32Weights) {
  const nas::Loader loader = synthetic_loader(32, 32);
  auto flat = [](nas::Network& net) {
    std::vector<torch::Tensor> ws;
    for (const torch::Tensor& w : net.parameters()) ws.push_back(w.detach().flatten());
    return torch::cat(ws);
  };
  const torch::Tensor initial = flat(*network(3, 10));
  // One SGD step from the same weights: the step taken is the gradient (plus weight decay), scaled.
  auto step = [&](bool bf16) {
    auto net = network(3, 10);
    nas::TrainOptions options;
    options.epochs = 1;
    options.grad_clip = 0;
    options.bf16 = bf16;
    EXPECT_FALSE(nas::Trainer(*net, options, {}, context_).fit(loader).diverged);
    for (const torch::Tensor& w : net->parameters()) EXPECT_EQ(w.scalar_type(), torch::kFloat) << "weights stay fp32";
    return flat(*net) - initial;
  };
  const torch::Tensor fp32 = step(false), bf16 = step(true);
  EXPECT_FALSE(torch::equal(bf16, fp32)) << "bf16 rounding changes the step: autocast was on";
  EXPECT_GT(torch::cosine_similarity(bf16, fp32, 0).item<double>(), 0.9) << "the same step at lower precision (0.97 seen)";
  EXPECT_FALSE(at::autocast::is_autocast_enabled(at::kCPU)) << "autocast ends with the forward pass";
}

// The trainer's fused step (clipping, weight decay, momentum, update in one pass) takes the steps of
// torch's clip_grad_norm_ and torch::optim::SGD: the same weights after three steps from the same
// start on the same batches, within float rounding, with the gradients clipped at every step.
TEST_F(TrainerTest, StepsAsTorchsClippedSgd) {
  const nas::Loader loader = synthetic_loader(24, 8);
  for (const bool nesterov : {false, true}) {
    nas::TrainOptions options;
    options.epochs = 1;
    options.lr = options.min_lr = 0.1;  // a constant learning rate
    options.nesterov = nesterov;
    options.weight_decay = 1e-3;
    options.grad_clip = 0.5;
    options.aux_weight = 0;
    options.precise_bn_batches = 0;
    auto ours = network(3, 10);
    nas::Trainer(*ours, options, {}, context_).fit(loader);

    auto theirs = network(3, 10);
    for (torch::Tensor& w : theirs->parameters())
      if (w.dim() == 4) w.set_data(w.data().contiguous(at::MemoryFormat::ChannelsLast));
    torch::optim::SGD sgd(theirs->parameters(),
                          torch::optim::SGDOptions(0.1).momentum(0.9).nesterov(nesterov).weight_decay(1e-3));
    int clipped = 0;
    loader.for_each(0, 0, [&](std::int64_t, nas::Batch& batch) {
      sgd.zero_grad();
      const torch::Tensor logits = theirs->forward(batch.images.contiguous(at::MemoryFormat::ChannelsLast)).logits;
      torch::nn::functional::cross_entropy(logits, batch.labels).backward();
      clipped += torch::nn::utils::clip_grad_norm_(theirs->parameters(), 0.5) > 0.5;
      sgd.step();
      return true;
    });
    EXPECT_EQ(clipped, 3) << "every step clips";
    const auto a = ours->parameters(), b = theirs->parameters();
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i)
      EXPECT_TRUE(torch::allclose(a[i], b[i], 1e-4, 1e-6))
          << "nesterov " << nesterov << ", parameter " << i << ": max difference " << (a[i] - b[i]).abs().max().item<double>();
  }
}

// Every kernel gets the strides of a dense channels_last tensor, 1x1 and depthwise kernels too (whose
// default strides also pass is_contiguous(ChannelsLast)): with those, a convolution of a strided view
// (the factorized reduction's) stays in channels_last instead of falling back to NCHW.
TEST_F(TrainerTest, ChannelsLastGivesEveryKernelChannelsLastStrides) {
  auto net = network(3, 10);
  nas::TrainOptions options;
  nas::Trainer trainer(*net, options, {}, context_);
  torch::Tensor pointwise;
  for (const torch::Tensor& w : net->parameters()) {
    if (w.dim() != 4) continue;
    EXPECT_EQ(w.strides(), at::empty_like(w, at::MemoryFormat::ChannelsLast).strides()) << w.sizes();
    if (w.size(2) == 1 && w.size(3) == 1) pointwise = w.detach();
  }
  ASSERT_TRUE(pointwise.defined());

  // A pointwise kernel of the network on every second pixel of a channels_last input (what the
  // factorized reduction does): the output is channels_last too.
  using torch::indexing::None;
  using torch::indexing::Slice;
  const torch::Tensor x = torch::randn({2, pointwise.size(1), 9, 9}).contiguous(at::MemoryFormat::ChannelsLast);
  const torch::Tensor grid = x.index({Slice(), Slice(), Slice(None, None, 2), Slice(None, None, 2)});
  EXPECT_TRUE(at::conv2d(grid, pointwise).is_contiguous(at::MemoryFormat::ChannelsLast));
}

// PreciseBN: the network evaluated is the one trained. At a constant, high learning rate the
// weights keep moving and the running averages lag them; re-estimated on the epoch's batch (its only
// one here), evaluation normalizes as training does, up to the unbiased variance's n / (n - 1). And
// nothing else changes, with drop path and validation on: the weights, the random generator, every
// module's mode and momentum, and the auxiliary head's statistics (no evaluation reaches it) are
// those of a training without it.
TEST_F(TrainerTest, PreciseBatchNormEvaluatesTheWeightsTrainedAndChangesNothingElse) {
  const nas::Loader loader = synthetic_loader(64, 64, 16);
  constexpr std::int64_t kEpochs = 8;
  const torch::Tensor images = loader.batch(kEpochs - 1, 0).images;
  auto drop = registry_->create<nas::Regularizer>("scheduled_drop_path", nas::test::params("regularizer/scheduled_drop_path"),
                                                  context_, {});
  struct Trained {
    std::shared_ptr<nas::Network> net;
    torch::Tensor generator;
  };
  auto train = [&](std::int64_t precise_bn_batches) {
    torch::manual_seed(0);
    auto net = space_->build(genotype_,
                             nas::test::model("space/nasnet", {{"N", std::int64_t{1}}, {"F", std::int64_t{24}}, {"aux_head", true}}),
                             {10, 3, 16, 16});
    nas::TrainOptions options;
    options.epochs = kEpochs;
    options.lr = options.min_lr = 0.3;
    options.precise_bn_batches = precise_bn_batches;
    torch::manual_seed(7);
    EXPECT_FALSE(nas::Trainer(*net, options, {drop.get()}, context_).fit(loader, &loader).diverged);
    return Trained{net, at::detail::getDefaultCPUGenerator().get_state()};
  };
  // How far the evaluated logits of the last epoch's batch are from those of the batch's own statistics.
  auto evaluation_error = [&](nas::Network& net) {
    torch::NoGradGuard no_grad;
    net.eval();
    const torch::Tensor evaluated = net.forward(images).logits;
    for (const auto& module : net.modules())  // batch statistics, nothing random
      module->train(dynamic_cast<torch::nn::BatchNorm2dImpl*>(module.get()) != nullptr);
    const torch::Tensor trained = net.forward(images).logits;
    return ((evaluated - trained).abs().max() / trained.abs().max()).item<double>();
  };
  const Trained averages = train(0), precise = train(1);
  EXPECT_TRUE(same_weights(*averages.net, *precise.net));
  EXPECT_TRUE(torch::equal(averages.generator, precise.generator)) << "a random number was drawn";
  const auto a = averages.net->named_modules(), p = precise.net->named_modules();
  ASSERT_EQ(a.size(), p.size());
  int aux_norms = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    const std::string& name = p[i].key();
    EXPECT_EQ(p[i].value()->is_training(), a[i].value()->is_training()) << name;
    auto* pn = dynamic_cast<torch::nn::BatchNorm2dImpl*>(p[i].value().get());
    auto* an = dynamic_cast<torch::nn::BatchNorm2dImpl*>(a[i].value().get());
    if (!pn) continue;
    EXPECT_EQ(pn->options.momentum(), an->options.momentum()) << name;
    if (name.rfind("aux_head", 0) != 0) continue;
    ++aux_norms;
    EXPECT_TRUE(torch::equal(pn->running_mean, an->running_mean)) << name;
    EXPECT_TRUE(torch::equal(pn->running_var, an->running_var)) << name;
    EXPECT_EQ(pn->num_batches_tracked.item<std::int64_t>(), kEpochs) << name;
  }
  EXPECT_EQ(aux_norms, 2);
  EXPECT_LT(evaluation_error(*precise.net), 0.02) << "0.002 seen";
  EXPECT_GT(evaluation_error(*averages.net), 0.2) << "1.03 seen";
}

TEST_F(TrainerTest, DivergenceIsAResultNotACrash) {
  const nas::Loader loader = synthetic_loader(64, 16);
  nas::TrainOptions options;
  options.epochs = 5;
  options.lr = 1e12;
  options.grad_clip = 0;
  auto net = network(3, 10);
  nas::TrainResult result = nas::Trainer(*net, options, {}, context_).fit(loader);
  EXPECT_TRUE(result.diverged);
  EXPECT_GE(result.diverged_step, 1);
  EXPECT_LT(result.diverged_step, 20);
}

TEST_F(TrainerTest, MetricsLinesAndPythonReadableWeights) {
  const nas::Loader loader = synthetic_loader(64, 16);
  nas::Context context{.log = log_, .seed = 3, .run_dir = dir_, .registry = registry_};
  auto net = network(3, 10);
  nas::TrainOptions options;
  options.epochs = 2;
  options.log_every = 2;
  auto lines = [&] {
    std::ifstream in(dir_ / "metrics.jsonl");
    int steps = 0, epochs = 0;
    for (std::string line; std::getline(in, line);) {
      nlohmann::json j = nlohmann::json::parse(line);
      steps += j.contains("loss");
      epochs += j.contains("train_loss");
    }
    return std::pair{steps, epochs};
  };
  nas::Trainer(*network(3, 10), options, {}, context).fit(loader);
  EXPECT_EQ(lines(), std::pair(4, 2));
  // A training that starts over (no checkpoint to resume) replaces the file: it describes one training.
  nas::Trainer trainer(*net, options, {}, context);
  trainer.fit(loader);
  EXPECT_EQ(lines(), std::pair(4, 2));

  trainer.save_weights(dir_ / "weights.pt");
  if (std::system("python3 -c 'import torch' >/dev/null 2>&1") != 0) GTEST_SKIP() << "no python3 with torch here";
  std::string script = fmt::format(
      "import torch; d = torch.load('{}'); w = d['classifier.weight']; "
      "print('tensors', len(d), tuple(w.shape)); print('sum', float(w.sum()))", (dir_ / "weights.pt").string());
  FILE* pipe = popen(("python3 -c \"" + script + "\" 2>&1").c_str(), "r");
  char buffer[4096] = {};
  std::string output(buffer, fread(buffer, 1, sizeof buffer - 1, pipe));
  EXPECT_EQ(pclose(pipe), 0) << output;
  std::size_t tensors = net->named_parameters().size() + net->named_buffers().size();
  EXPECT_THAT(output, HasSubstr(fmt::format("tensors {} (10, 24)", tensors)));
  ASSERT_THAT(output, HasSubstr("sum "));
  double sum = std::stod(output.substr(output.find("sum ") + 4));
  EXPECT_NEAR(sum, net->named_parameters()["classifier.weight"].sum().item<double>(), 1e-5);
}

}  // namespace
