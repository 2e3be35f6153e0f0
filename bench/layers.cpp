// nas::Conv2d against torch::nn::Conv2d where the engine computes a weight gradient of its own
// (forward + backward, channels_last, float32), the variants interleaved in one run: the strided 1x1
// convolutions NASNet's reduction cells build, the 1x1 ones of few pixels (NASNet-A Large's, Mobile's
// last stages), and the depthwise convolutions of its separable ones.
//
//   build/release/bin/nas_bench_layers [--rounds 5] [--iterations 50] [--threads 2]
//
// Prints, for each shape, the time per iteration of both and the ratio torch / nas (above 1: nas is
// faster). The torch variant of the strided 1x1 shapes runs oneDNN's jit_1x1 kernel that corrupts the
// heap on AVX2-only CPUs (docs/known-issues.md): run this on a CPU with AVX-512, or accept a crash there.
#include <algorithm>
#include <chrono>
#include <string>

#include <fmt/format.h>
#include <torch/torch.h>

#include "nas/layers.hpp"
#include "flags.hpp"

namespace {

using bench::flag;

template <class Conv>
double seconds_per_iteration(Conv& conv, const at::Tensor& x, std::int64_t iterations) {
  const auto start = std::chrono::steady_clock::now();
  for (std::int64_t i = 0; i < iterations; ++i) {
    at::Tensor input = x.detach().requires_grad_();
    conv->zero_grad();
    const at::Tensor out = conv->forward(input);
    out.backward(at::ones_like(out, at::MemoryFormat::ChannelsLast));  // a gradient as a network's next layer hands over
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / static_cast<double>(iterations);
}

}  // namespace

int main(int argc, char** argv) {
  const std::int64_t rounds = flag(argc, argv, "rounds", 5), iterations = flag(argc, argv, "iterations", 50);
  at::set_num_threads(static_cast<int>(flag(argc, argv, "threads", 2)));
  struct Shape {
    std::int64_t batch, in, out, size, kernel, stride;
    bool depthwise() const { return kernel > 1; }
  };
  const Shape shapes[] = {
      // Strided 1x1: quickstart-sized children (4, 8, 12 channels at 28 and 14 pixels: the safe path),
      // CIFAR 2@96's first reduction (32 channels at 32x32) and 6@768's (128 at 32x32).
      {32, 4, 8, 28, 1, 2}, {32, 8, 16, 14, 1, 2}, {32, 12, 24, 14, 1, 2}, {32, 32, 64, 32, 1, 2}, {32, 128, 256, 32, 1, 2},
      // 1x1 of at most 4,096 output pixels (a matrix product's weight gradient): Large's (batch 2) and
      // Mobile's (batch 16); Mobile's 28x28 stage is above the bound (torch's on both sides).
      {2, 168, 168, 42, 1, 1}, {2, 1008, 168, 42, 1, 1}, {2, 336, 336, 21, 1, 1}, {2, 672, 672, 11, 1, 1},
      {2, 4032, 672, 11, 1, 1}, {16, 176, 176, 14, 1, 1}, {16, 352, 352, 7, 1, 1}, {16, 88, 88, 28, 1, 1},
      // Depthwise: NASNet-A Mobile's (batch 16, 224x224 images) and Large's (batch 2, 331x331).
      {16, 11, 11, 112, 7, 2}, {16, 44, 44, 56, 5, 1}, {16, 88, 88, 28, 5, 1},
      {16, 176, 176, 14, 7, 1}, {2, 42, 42, 165, 7, 2}, {2, 168, 168, 83, 5, 1}, {2, 336, 336, 42, 7, 1}};
  fmt::print("{:>5} {:>4} {:>4} {:>5} {:>6}  {:>10} {:>10}  {:>10}\n", "batch", "in", "out", "size", "kernel",
             "torch ms", "nas ms", "torch/nas");
  for (const Shape& s : shapes) {
    torch::manual_seed(0);
    auto options = torch::nn::Conv2dOptions(s.in, s.out, s.kernel).stride(s.stride).padding(s.kernel / 2)
                       .groups(s.depthwise() ? s.in : 1).bias(false);
    torch::nn::Conv2d plain(options);
    nas::Conv2d ours(options);
    for (auto* p : {&plain->weight, &ours->weight}) p->set_data(p->data().contiguous(at::MemoryFormat::ChannelsLast));
    const at::Tensor x = torch::randn({s.batch, s.in, s.size, s.size}).contiguous(at::MemoryFormat::ChannelsLast);
    seconds_per_iteration(plain, x, 5);  // warm-up: oneDNN builds its kernels once
    seconds_per_iteration(ours, x, 5);
    std::vector<double> torch_times, nas_times;
    for (std::int64_t r = 0; r < rounds; ++r) {  // interleaved: the machine's noise hits both alike
      torch_times.push_back(seconds_per_iteration(plain, x, iterations));
      nas_times.push_back(seconds_per_iteration(ours, x, iterations));
    }
    std::sort(torch_times.begin(), torch_times.end());
    std::sort(nas_times.begin(), nas_times.end());
    const double t = torch_times[torch_times.size() / 2], n = nas_times[nas_times.size() / 2];  // medians
    fmt::print("{:>5} {:>4} {:>4} {:>5} {:>6}  {:>10.3f} {:>10.3f}  {:>10.2f}\n", s.batch, s.in, s.out, s.size,
               fmt::format("{}x{}/{}", s.kernel, s.kernel, s.stride), 1e3 * t, 1e3 * n, t / n);
  }
}
