// Forward+backward throughput of a NASNet-A child on CIFAR-shaped input, contiguous vs channels_last.
//
//   build/release/bin/nas_bench_nasnet [--N 2] [--F 768] [--batch 32] [--steps 5] [--rounds 3]
//
// The two memory formats alternate round by round, so machine noise hits both alike; each reports
// its median images/s over the rounds, and their ratio.
#include <algorithm>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <torch/torch.h>

#include "nas/config.hpp"
#include "nas/loader.hpp"
#include "nas/log.hpp"
#include "nas/space.hpp"
#include "flags.hpp"

namespace {

using bench::flag;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const std::int64_t N = flag(argc, argv, "N", 2), F = flag(argc, argv, "F", 768);
  const std::int64_t batch = flag(argc, argv, "batch", 32), steps = flag(argc, argv, "steps", 5),
                     rounds = flag(argc, argv, "rounds", 3);
  const int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(threads);

  nas::Logger log;
  nas::Registry registry;
  nas::load_plugins(registry, {nas::default_plugin_dir()});
  nas::Context context{.log = log, .registry = &registry};
  const nas::Entry& entry = registry.require("space", "nasnet");
  auto space = registry.create<nas::Space>("nasnet", nas::default_params(entry.schema, entry.key), context, {});
  const nas::Params model = nas::parse_model_assignments(entry, {fmt::format("N={}", N), fmt::format("F={}", F)});
  std::ifstream file(std::string(NAS_SOURCE_DIR) + "/configs/genotypes/nasnet_a.yaml");
  std::string genotype((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());

  torch::manual_seed(0);
  torch::Tensor images = torch::randn({batch, 3, 32, 32});
  torch::Tensor labels = torch::randint(0, 10, {batch});
  struct Mode {
    const char* name;
    torch::MemoryFormat format;
    std::shared_ptr<nas::Network> network;
    torch::Tensor input;
    std::vector<double> rates;
  };
  std::vector<Mode> modes{{"contiguous", torch::MemoryFormat::Contiguous, nullptr, {}, {}},
                          {"channels_last", torch::MemoryFormat::ChannelsLast, nullptr, {}, {}}};
  for (Mode& m : modes) {
    m.network = space->build(genotype, model, {10, 3, 32, 32});
    for (auto& p : m.network->parameters())
      if (p.dim() == 4) p.set_data(p.data().contiguous(m.format));
    m.network->train();
    m.input = images.contiguous(m.format);
  }
  auto step = [&](Mode& m) {
    m.network->zero_grad();
    torch::nn::functional::cross_entropy(m.network->forward(m.input).logits, labels).backward();
  };
  for (Mode& m : modes) step(m);  // warm-up: oneDNN picks its kernels on first use

  for (std::int64_t r = 0; r < rounds; ++r)
    for (Mode& m : modes) {
      auto start = std::chrono::steady_clock::now();
      for (std::int64_t s = 0; s < steps; ++s) step(m);
      std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
      m.rates.push_back(static_cast<double>(batch * steps) / took.count());
    }
  fmt::print("NASNet-A {}@{} (CIFAR layout), 32x32 input, batch {}, forward+backward, CPU, {} threads\n",
             N, F, batch, threads);
  for (const Mode& m : modes)
    fmt::print("  {:<14} {:8.1f} images/s (median of {} rounds of {} steps)\n", m.name, median(m.rates), rounds, steps);
  fmt::print("  channels_last / contiguous: {:.2f}\n", median(modes[1].rates) / median(modes[0].rates));
  return 0;
}
