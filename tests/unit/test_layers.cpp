// The layers of nas/layers.hpp. nas::Conv2d: 1x1 convolutions whose weight gradient is a matrix
// product compute what torch's convolution computes, and narrow strided ones train on the shapes
// whose backward pass corrupted the heap in oneDNN's jit_1x1:avx2 kernel (docs/known-issues.md); on
// AVX2-only CPUs the training test crashed within a few hundred steps before the change, elsewhere
// it simply passes. nas::BatchNorm2d: torch's batch norm, with the engine's kernels and with global
// statistics of one process, and the same bits on any number of threads.
#include <ATen/Parallel.h>

#include <optional>

#include <fmt/format.h>
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "nas/layers.hpp"
#include "nas/log.hpp"
#include "nas/op.hpp"
#include "support.hpp"

namespace nn = torch::nn;

namespace {

// `n` intra-op threads while it lives, the count before restored after (tests run on two, with one
// oneDNN picked another kernel, unless a test varies them).
class Threads {
 public:
  explicit Threads(int n) : before_(at::get_num_threads()) { at::set_num_threads(n); }
  ~Threads() { at::set_num_threads(before_); }
  Threads(const Threads&) = delete;
  Threads& operator=(const Threads&) = delete;

 private:
  int before_;
};

// `a` (float) within `tolerance` x max(1, the largest value of `exact` (double)) everywhere. Float against
// double after many sums or steps: an element near zero is off by about as much as the largest one.
void expect_within(const at::Tensor& a, const at::Tensor& exact, double tolerance, const std::string& what) {
  ASSERT_EQ(a.sizes(), exact.sizes()) << what;
  const double error = (a.to(torch::kDouble) - exact).abs().max().item<double>();
  EXPECT_LE(error, tolerance * std::max(1.0, exact.abs().max().item<double>())) << what;
}

// 1x1 convolutions whose weight gradient nas::Conv2d computes as a matrix product (the narrow strided
// ones, and channels_last ones of at most 4,096 output pixels) compute what torch's convolution does,
// with the output's gradient in either layout; the others are torch's own.
TEST(Conv2dTest, PointwiseComputesWhatTorchsConvolutionComputes) {
  Threads two(2);
  torch::manual_seed(0);
  struct Case {
    std::int64_t in, out, size, stride_y, stride_x;
    bool channels_last, bias, by_product;
  };
  const bool cl = true, nchw = false, bias = true, none = false;
  for (const Case& c : {Case{4, 16, 8, 2, 2, cl, none, true}, Case{4, 16, 9, 2, 2, cl, none, true},
                        Case{8, 12, 7, 2, 2, cl, none, true}, Case{3, 5, 10, 3, 3, cl, none, true},
                        Case{4, 16, 8, 2, 2, nchw, none, true}, Case{4, 8, 8, 1, 1, cl, none, true},
                        Case{96, 64, 7, 1, 1, cl, none, true}, Case{32, 48, 15, 2, 2, cl, none, true},
                        Case{24, 40, 9, 2, 1, cl, none, true}, Case{64, 10, 1, 1, 1, cl, bias, true},
                        Case{16, 16, 28, 1, 1, cl, bias, true}, Case{16, 16, 29, 1, 1, cl, none, false},
                        Case{32, 32, 60, 2, 2, cl, none, false}, Case{16, 16, 7, 1, 1, nchw, none, false}}) {
    for (const auto upstream_format : {at::MemoryFormat::Contiguous, at::MemoryFormat::ChannelsLast}) {
      const std::string what =
          fmt::format("{}->{} channels, 5x{}x{} {}, stride {}x{}{}, upstream {}", c.in, c.out, c.size, c.size,
                      c.channels_last ? "channels_last" : "NCHW", c.stride_y, c.stride_x, c.bias ? ", bias" : "",
                      upstream_format == at::MemoryFormat::ChannelsLast ? "channels_last" : "NCHW");
      auto options = nn::Conv2dOptions(c.in, c.out, 1).stride({c.stride_y, c.stride_x}).bias(c.bias);
      nas::Conv2d ours(options);
      nn::Conv2d exact(options);  // in double: torch's own convolution, not oneDNN's (nor its faulty kernel)
      exact->to(torch::kDouble);
      {
        torch::NoGradGuard no_grad;
        exact->weight.copy_(ours->weight);
        if (c.bias) exact->bias.copy_(ours->bias);
      }
      const at::Tensor x = torch::randn({5, c.in, c.size, c.size});
      at::Tensor x_ours = (c.channels_last ? x.contiguous(at::MemoryFormat::ChannelsLast) : x).clone().requires_grad_();
      at::Tensor x_exact = x.to(torch::kDouble).requires_grad_();
      at::Tensor y_ours = ours->forward(x_ours), y_exact = exact->forward(x_exact);
      auto node = y_ours.grad_fn();  // the product's, behind the bias's addition
      if (c.bias) node = node->next_edges().at(0).function;
      EXPECT_EQ(node->name().find("PointwiseConv") != std::string::npos, c.by_product) << what << ": " << node->name();
      expect_within(y_ours, y_exact, 1e-5, what + ", output");
      const at::Tensor upstream = torch::randn_like(y_ours).contiguous(upstream_format);
      y_ours.backward(upstream);
      y_exact.backward(upstream.to(torch::kDouble));
      expect_within(x_ours.grad(), x_exact.grad(), 1e-5, what + ", input gradient");
      expect_within(ours->weight.grad(), exact->weight.grad(), 1e-5, what + ", weight gradient");
      if (c.bias) expect_within(ours->bias.grad(), exact->bias.grad(), 1e-5, what + ", bias gradient");
    }
  }
}

// Under bf16 autocast (training with bf16: true) the convolution is torch's, in bf16, and trains.
TEST(Conv2dTest, StridedPointwiseTrainsUnderBf16Autocast) {
  nas::Conv2d ours(nn::Conv2dOptions(4, 8, 1).stride(2).bias(false));
  at::Tensor x = torch::randn({2, 4, 8, 8}).contiguous(at::MemoryFormat::ChannelsLast).requires_grad_();
  const bool was = at::autocast::is_autocast_enabled(at::kCPU);
  const at::ScalarType dtype = at::autocast::get_autocast_dtype(at::kCPU);
  at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
  at::autocast::set_autocast_enabled(at::kCPU, true);
  at::Tensor y = ours->forward(x);
  at::autocast::set_autocast_enabled(at::kCPU, was);
  at::autocast::set_autocast_dtype(at::kCPU, dtype);
  at::autocast::clear_cache();
  EXPECT_EQ(y.scalar_type(), at::kBFloat16);
  y.to(at::kFloat).sum().backward();
  EXPECT_EQ(ours->weight.grad().scalar_type(), at::kFloat);
  EXPECT_TRUE(x.grad().defined());
}

// The reduction cell's identity and conv_1x1 with stride 2 on 4 channels are ReLU-1x1conv-BN with
// stride 2: trained in channels_last on 2 threads for 400 steps (8x8 and 9x9 inputs in turn), they
// stay within 1e-4 of the same layers computed by torch's strided convolution in double precision
// (which oneDNN does not compute, so the reference cannot reach the faulty kernel). Float and double
// part a little over the steps, more with some seeds than with others (1.2e-5 with this one, 4e-7 to
// 1.6e-6 with seeds 2 to 5, with torch's batch norm and the engine's alike); a wrong gradient parts
// at once.
TEST(Conv2dTest, StridedPointwiseOpsTrainInChannelsLastAsTheStridedReference) {
  Threads two(2);
  nas::Logger log(nas::Logger::Level::error);
  const nas::Context context{.log = log, .registry = &nas::test::plugins()};
  for (const std::string name : {"identity", "conv_1x1"}) {
    torch::manual_seed(1);
    std::shared_ptr<nas::Op> op = nas::test::plugins().create<nas::Op>(name, nas::test::params("op/" + name), context, {4, 16, 2});
    nn::Sequential reference(nn::ReLU(), nn::Conv2d(nn::Conv2dOptions(4, 16, 1).stride(2).bias(false)),
                             nn::BatchNorm2d(nn::BatchNorm2dOptions(16).eps(1e-3)));
    reference->to(torch::kDouble);
    auto ours = op->parameters(), theirs = reference->parameters();
    ASSERT_EQ(ours.size(), theirs.size()) << name;
    {
      torch::NoGradGuard no_grad;
      for (std::size_t i = 0; i < ours.size(); ++i) {
        theirs[i].copy_(ours[i].to(torch::kDouble));
        if (ours[i].dim() == 4) ours[i].set_data(ours[i].data().contiguous(at::MemoryFormat::ChannelsLast));
      }
    }
    torch::optim::SGD sgd_ours(op->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9));
    torch::optim::SGD sgd_theirs(reference->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9));
    for (int step = 0; step < 400; ++step) {
      const std::int64_t size = step % 2 == 0 ? 8 : 9;
      at::Tensor x = torch::randn({16, 4, size, size});
      at::Tensor target = torch::randn({16, 16, (size + 1) / 2, (size + 1) / 2});
      sgd_ours.zero_grad();
      sgd_theirs.zero_grad();
      at::Tensor loss_ours = (op->forward(x.contiguous(at::MemoryFormat::ChannelsLast)) - target).square().mean();
      at::Tensor loss_theirs = (reference->forward(x.to(torch::kDouble)) - target.to(torch::kDouble)).square().mean();
      loss_ours.backward();
      loss_theirs.backward();
      sgd_ours.step();
      sgd_theirs.step();
      if (step % 100 == 99) EXPECT_NEAR(loss_ours.item<double>(), loss_theirs.item<double>(), 1e-4) << name << " step " << step;
    }
    for (std::size_t i = 0; i < ours.size(); ++i)
      expect_within(ours[i], theirs[i], 1e-4, name + " parameter");
  }
}

// Depthwise convolutions (the engine's weight gradient) against torch's convolution in double: fewer
// channels than a vector (the copy), a multiple of 16, channels that end in an overlapping vector;
// 5x5 and 7x7, strides 1 and 2 (mixed too), padding of k/2, none, more than k/2 and unequal, even and
// odd sizes, images smaller than the kernel; inputs in both layouts, kernels with the trainer's
// explicit channels_last strides.
TEST(Conv2dTest, DepthwiseGivesTorchsGradientsAtAnyWidthKernelStrideAndLayout) {
  Threads two(2);
  torch::manual_seed(0);
  struct Shape {
    std::int64_t channels, kernel, sy, sx, py, px, height, width;
  };
  for (const Shape& s : {Shape{1, 5, 1, 1, 2, 2, 8, 8}, Shape{11, 7, 2, 2, 3, 3, 13, 12}, Shape{16, 5, 1, 1, 2, 2, 9, 10},
                         Shape{44, 5, 2, 2, 2, 2, 12, 11}, Shape{44, 7, 1, 1, 3, 3, 7, 7}, Shape{100, 7, 1, 1, 3, 3, 5, 6},
                         Shape{20, 7, 2, 2, 3, 3, 3, 2}, Shape{24, 5, 1, 1, 0, 0, 9, 8}, Shape{24, 5, 1, 2, 4, 4, 6, 7},
                         Shape{18, 7, 2, 1, 1, 3, 10, 9}})
    for (const auto format : {at::MemoryFormat::ChannelsLast, at::MemoryFormat::Contiguous}) {
      const std::string what = fmt::format("{} channels, {}x{} kernel, stride {}x{}, padding {}x{}, {}x{}, {}", s.channels,
                                           s.kernel, s.kernel, s.sy, s.sx, s.py, s.px, s.height, s.width,
                                           format == at::MemoryFormat::ChannelsLast ? "channels_last" : "contiguous");
      nas::Conv2d ours(nn::Conv2dOptions(s.channels, s.channels, s.kernel).stride({s.sy, s.sx}).padding({s.py, s.px})
                           .groups(s.channels).bias(false));
      if (format == at::MemoryFormat::ChannelsLast) {  // as the trainer lays kernels out
        torch::NoGradGuard no_grad;
        ours->weight.set_data(at::empty(ours->weight.sizes(), ours->weight.options().memory_format(format)).copy_(ours->weight));
      }
      const at::Tensor x = torch::randn({3, s.channels, s.height, s.width}).contiguous(format).requires_grad_();
      const at::Tensor x_exact = x.detach().to(torch::kDouble).requires_grad_();
      const at::Tensor w_exact = ours->weight.detach().to(torch::kDouble).requires_grad_();
      const at::Tensor y = ours->forward(x);
      const at::Tensor y_exact = at::conv2d(x_exact, w_exact, {}, {s.sy, s.sx}, {s.py, s.px}, 1, s.channels);
      EXPECT_NE(y.grad_fn()->name().find("DepthwiseConv"), std::string::npos) << what << ": " << y.grad_fn()->name();
      const at::Tensor upstream = torch::randn(y_exact.sizes(), torch::kDouble);
      y.backward(upstream.to(torch::kFloat).contiguous(format));
      y_exact.backward(upstream);
      expect_within(y, y_exact, 1e-5, what + ", output");
      expect_within(x.grad(), x_exact.grad(), 1e-5, what + ", input gradient");
      expect_within(ours->weight.grad(), w_exact.grad(), 1e-5, what + ", weight gradient");
    }
}

TEST(Conv2dTest, DepthwiseWeightGradientGivesTheSameBitsOnAnyNumberOfThreads) {
  torch::manual_seed(0);
  nas::Conv2d conv(nn::Conv2dOptions(44, 44, 5).padding(2).groups(44).bias(false));
  const at::Tensor x = torch::randn({4, 44, 30, 30}).contiguous(at::MemoryFormat::ChannelsLast);
  std::vector<at::Tensor> gradients;
  for (int threads : {1, 2, 3}) {
    Threads these(threads);
    conv->zero_grad();
    const at::Tensor y = conv->forward(x);
    ASSERT_NE(y.grad_fn()->name().find("DepthwiseConv"), std::string::npos) << "the engine's kernel";
    y.square().sum().backward();
    gradients.push_back(conv->weight.grad().clone());
  }
  EXPECT_TRUE(torch::equal(gradients[0], gradients[1]));
  EXPECT_TRUE(torch::equal(gradients[0], gradients[2]));
}

// One process: its own sums are the global ones.
class OneProcess final : public nas::Collective {
 public:
  at::Tensor sum(const at::Tensor& local) override { return local.clone(); }
};

// nas::BatchNorm2d trained side by side with torch's in double precision on the same batches: outputs,
// gradients and running statistics. On one process, through a collective of one process (the global
// batch's path) or none: float32 channels_last below 64 channels runs the engine's kernels (whose
// blocks of lcm(channels, 16) values end in a partial block at 1 and 11 channels); 100 runs ATen's.
void expect_torchs_batch_norm(std::int64_t channels, at::MemoryFormat format, bool global) {
  const std::string what = fmt::format("{} channels, {}, {}", channels, format == at::MemoryFormat::ChannelsLast ?
                                       "channels_last" : "contiguous", global ? "global batch" : "local batch");
  auto options = nn::BatchNorm2dOptions(channels).eps(1e-3).momentum(0.2);
  nas::BatchNorm2d ours(options);
  nn::BatchNorm2d exact(options);
  exact->to(torch::kDouble);
  {
    torch::NoGradGuard no_grad;
    ours->weight.uniform_(0.5, 1.5);
    ours->bias.uniform_(-0.5, 0.5);
    exact->weight.copy_(ours->weight);
    exact->bias.copy_(ours->bias);
  }
  // Torch's own float kernels are 3.6e-5 off at 30 here.
  auto expect_near_exact = [&](const at::Tensor& a, const at::Tensor& b, const std::string& quantity) {
    expect_within(a, b, 1e-5, what + ": " + quantity);
  };
  OneProcess one;
  for (int step = 0; step < 3; ++step) {
    // Far from zero: variances computed from sums of squares would lose digits in float.
    const at::Tensor x = (3 * torch::randn({8, channels, 5, 7}) + 50).contiguous(format);
    const at::Tensor upstream = torch::randn({8, channels, 5, 7});
    at::Tensor x_ours = x.clone().requires_grad_(), x_exact = x.to(torch::kDouble).requires_grad_();
    at::Tensor y_ours;
    {
      std::optional<nas::GlobalBatchNorm> scope;
      if (global) scope.emplace(one);
      y_ours = ours->forward(x_ours);
    }
    at::Tensor y_exact = exact->forward(x_exact);
    expect_near_exact(y_ours, y_exact, "output");
    EXPECT_TRUE(y_ours.is_contiguous(format)) << what;
    (y_ours * upstream).sum().backward();
    (y_exact * upstream.to(torch::kDouble)).sum().backward();
    expect_near_exact(x_ours.grad(), x_exact.grad(), "input gradient");
    expect_near_exact(ours->weight.grad(), exact->weight.grad(), "weight gradient");
    expect_near_exact(ours->bias.grad(), exact->bias.grad(), "bias gradient");
    expect_near_exact(ours->running_mean, exact->running_mean, "running mean");
    expect_near_exact(ours->running_var, exact->running_var, "running variance");
    EXPECT_EQ(ours->num_batches_tracked.item<std::int64_t>(), exact->num_batches_tracked.item<std::int64_t>()) << what;
  }
}

TEST(BatchNorm2dTest, TrainsAsTorchsBatchNormAtAnyWidthLayoutAndBatch) {
  torch::manual_seed(2);
  for (const std::int64_t channels : {1, 6, 11, 16, 44, 100})
    for (const auto format : {at::MemoryFormat::Contiguous, at::MemoryFormat::ChannelsLast})
      for (const bool global : {false, true}) expect_torchs_batch_norm(channels, format, global);
}

// The engine's kernels add their sums in fixed chunks: a training step gives the same bits on one
// thread as on two, so a run reproduces on machines with other core counts.
TEST(BatchNorm2dTest, GivesTheSameBitsOnAnyNumberOfThreads) {
  torch::manual_seed(3);
  const at::Tensor x = (torch::randn({4, 11, 64, 64}) + 2).contiguous(at::MemoryFormat::ChannelsLast);
  const at::Tensor upstream = torch::randn({4, 11, 64, 64});
  auto step = [&](int threads) {
    Threads these(threads);
    torch::manual_seed(4);
    nas::BatchNorm2d norm(nn::BatchNorm2dOptions(11));
    at::Tensor input = x.clone().requires_grad_();
    const at::Tensor y = norm->forward(input);
    (y * upstream).sum().backward();
    return std::vector<at::Tensor>{y, input.grad(), norm->weight.grad(), norm->running_var};
  };
  const auto one = step(1), two = step(2);
  for (std::size_t i = 0; i < one.size(); ++i) EXPECT_TRUE(torch::equal(one[i], two[i])) << "tensor " << i;
}

}  // namespace
