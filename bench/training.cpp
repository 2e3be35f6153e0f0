// Training engine throughput, data loader throughput and peak memory, for bench/training.py.
//
//   build/release/bin/nas_bench_training [--N 2] [--F 768] [--preset NAME] [--size 32] [--classes 10]
//                                        [--batch 32] [--steps 6] [--workers 1] [--children 1]
//                                        [--cifar DIR] [--device cpu|cuda] [--channels_last 1] [--bf16 0]
//                                        [--loader 1] [--threads CORES] [--profile TRACE.json]
//
// Trains a NASNet-A network through the engine (Trainer + Loader, SGD, gradient clipping, the
// auxiliary head's loss where the model has one; channels_last and bf16 autocast as asked) on a
// batch of synthetic size x size images held in memory (HeldImages): a CIFAR-layout child by default,
// or a preset of the space (e.g. nasnet_a_large; --N and --F then override it only when given). The
// first step (where oneDNN picks its kernels) is timed apart; --profile writes the measured steps'
// ATen ops as a Chrome trace (for bench/op_profile.py). Then (unless --loader 0) runs the loader
// alone over CIFAR-10 (real files when --cifar is given, else synthetic size x size images) with the
// training augmentation. Prints key value lines.
// With --children K, K children train at once on K threads, one intra-op thread each (how a search
// worker fills a CPU with small children); images_per_s is then their sum.
#include <sys/resource.h>

#include <chrono>
#include <fstream>
#include <numeric>
#include <thread>

#include <fmt/format.h>
#include <torch/csrc/autograd/profiler_kineto.h>
#include <torch/torch.h>
#ifdef NAS_BENCH_CUDA  // a CUDA build of LibTorch (bench/CMakeLists.txt)
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include "nas/config.hpp"
#include "nas/loader.hpp"
#include "nas/log.hpp"
#include "nas/trainer.hpp"
#include "flags.hpp"

namespace {

using bench::flag;
using bench::text_flag;

// The first `held` images of `source`, kept in memory and served round-robin as `size` examples: the
// loader still stacks (and for a GPU pins) every batch, but what is timed is training, not the
// synthetic generator (a few ms per 224x224 image on one core: a GPU would wait for it).
class HeldImages final : public nas::Dataset {
 public:
  HeldImages(const nas::Dataset& source, std::int64_t held, std::int64_t size) : info_(source.info()), size_(size) {
    for (std::int64_t i = 0; i < held; ++i) examples_.push_back(source.get(i));
  }
  nas::DatasetInfo info() const override { return info_; }
  std::int64_t size() const override { return size_; }
  nas::Example get(std::int64_t index) const override {
    return examples_[static_cast<std::size_t>(index) % examples_.size()];
  }

 private:
  nas::DatasetInfo info_;
  std::int64_t size_;
  std::vector<nas::Example> examples_;
};

std::vector<std::int64_t> range(std::int64_t n) {
  std::vector<std::int64_t> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  const std::int64_t batch = flag(argc, argv, "batch", 32), steps = flag(argc, argv, "steps", 6);
  const std::int64_t children = flag(argc, argv, "children", 1);
  const auto cores = static_cast<std::int64_t>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(children > 1 ? 1 : static_cast<int>(flag(argc, argv, "threads", cores)));
  nas::Logger log(nas::Logger::Level::warn);
  nas::Registry registry;
  nas::load_plugins(registry, {nas::default_plugin_dir()});
  const c10::Device device = text_flag(argc, argv, "device") == "cuda" ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  nas::Context context{.log = log, .device = device, .registry = &registry};
  auto create = [&](const std::string& kind, const std::string& name, std::map<std::string, nas::Value, std::less<>> p) {
    const nas::Entry& entry = registry.require(kind, name);
    for (const nas::ParamSpec& spec : entry.schema)
      if (spec.default_value) p.emplace(spec.name, *spec.default_value);
    return nas::Params(std::move(p));
  };
  auto space = registry.create<nas::Space>("nasnet", create("space", "nasnet", {}), context, {});
  std::ifstream file(std::string(NAS_SOURCE_DIR) + "/configs/genotypes/nasnet_a.yaml");
  std::string genotype((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  const std::string preset = text_flag(argc, argv, "preset");
  std::vector<std::string> assignments;
  if (!preset.empty()) assignments.push_back("preset=" + preset);
  for (const char* key : {"N", "F"})
    if (!text_flag(argc, argv, key).empty() || preset.empty())
      assignments.push_back(fmt::format("{}={}", key, flag(argc, argv, key, key == std::string("N") ? 2 : 768)));
  const nas::Params model = nas::parse_model_assignments(registry.require("space", "nasnet"), assignments);
  const std::int64_t size = flag(argc, argv, "size", 32), classes = flag(argc, argv, "classes", 10);
  // Ten classes of images whatever the network's: the labels are below both, and the synthetic
  // dataset keeps one prototype image per class in memory.
  auto synthetic = registry.create<nas::Dataset>(
      "synthetic", create("dataset", "synthetic", {{"size", batch}, {"height", size}, {"width", size}}), context,
      {nas::Split::train});
  nas::LoaderOptions options;
  options.batch_size = batch;
  options.train = true;
  options.workers = flag(argc, argv, "workers", 1);
  options.pin_memory = device.is_cuda();
  nas::TrainOptions train;
  train.epochs = 1;
  train.channels_last = flag(argc, argv, "channels_last", 1) != 0;
  train.bf16 = flag(argc, argv, "bf16", 0) != 0;
  train.log_every = 1 << 30;
  train.precise_bn_batches = 0;  // training steps only, as the reference times them (PreciseBN adds forward passes)
  const HeldImages held(*synthetic, batch, batch * steps);
  nas::Loader warmup(held, range(batch), options, 0);
  nas::Loader loader(held, range(batch * steps), options, 0);

  std::vector<double> rates(static_cast<std::size_t>(children));
  std::int64_t params = 0;
  double first_step_seconds = 0;
  auto child = [&](std::size_t k) {
    auto network = space->build(genotype, model, {classes, 3, size, size});
    nas::Trainer trainer(*network, train, {}, context);
    const auto start = std::chrono::steady_clock::now();
    trainer.fit(warmup);  // oneDNN picks its kernels on first use
    if (k == 0) first_step_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const std::string trace = k == 0 ? text_flag(argc, argv, "profile") : "";
    namespace profiler = torch::profiler::impl;
    const profiler::ProfilerConfig config(profiler::ProfilerState::KINETO, /*report_input_shapes=*/true);
    const std::set<profiler::ActivityType> activities{profiler::ActivityType::CPU};
    if (!trace.empty()) {
      torch::autograd::profiler::prepareProfiler(config, activities);
      torch::autograd::profiler::enableProfiler(config, activities);
    }
    rates[k] = trainer.fit(loader).images_per_second;
    if (!trace.empty()) torch::autograd::profiler::disableProfiler()->save(trace);
    if (k == 0)
      for (const auto& p : network->parameters()) params += p.numel();
  };
  auto print_peak_memory = [&] {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    fmt::print("peak_rss_mb {:.1f}\n", static_cast<double>(usage.ru_maxrss) / 1024.0);
#ifdef NAS_BENCH_CUDA
    if (device.is_cuda()) {  // what tensors took at most, as Python's torch.cuda.max_memory_allocated()
      const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
      const auto all = static_cast<std::size_t>(c10::CachingAllocator::StatType::AGGREGATE);
      fmt::print("peak_gpu_mb {:.1f}\n", static_cast<double>(stats.allocated_bytes[all].peak) / (1 << 20));
    }
#endif
  };
  torch::manual_seed(0);
  // One child trains on the main thread, as nas-host trains (measured on Large: no difference beyond
  // the machine's noise against a thread of its own, 0.663 and 0.575 vs 0.634 and 0.575 images/s).
  if (children == 1) {
    child(0);
  } else {
    std::vector<std::thread> threads;
    for (std::size_t k = 0; k < rates.size(); ++k) threads.emplace_back(child, k);
    for (std::thread& t : threads) t.join();
  }
  fmt::print("params {}\nchildren {}\nfirst_step_s {:.3f}\nimages_per_s {:.3f}\n", params, children, first_step_seconds,
             std::accumulate(rates.begin(), rates.end(), 0.0));
  if (flag(argc, argv, "loader", 1) == 0) {
    print_peak_memory();  // of the training alone
    return 0;
  }

  // The loader alone, with the training augmentation and normalization, as fast as it can go.
  std::string cifar = text_flag(argc, argv, "cifar");
  auto data = cifar.empty()
                  ? registry.create<nas::Dataset>(
                        "synthetic",
                        create("dataset", "synthetic", {{"size", std::int64_t{50000}}, {"height", size}, {"width", size}}),
                        context, {nas::Split::train})
                  : registry.create<nas::Dataset>("cifar10", create("dataset", "cifar10", {{"root", cifar}}), context,
                                                  {nas::Split::train});
  nas::LoaderOptions feed = options;
  feed.pin_memory = false;  // what the CPU does alone
  feed.augmentation = {4, true};
  feed.mean = {0.4914, 0.4822, 0.4465};
  feed.std = {0.2470, 0.2435, 0.2616};
  // 6,400 images (200 CIFAR batches of 32), or 20 batches if more.
  nas::Loader reader(*data, range(std::min<std::int64_t>(data->size(), std::max<std::int64_t>(6400, 20 * batch))), feed, 0);
  auto start = std::chrono::steady_clock::now();
  std::int64_t images = 0;
  reader.for_each(0, 0, [&](std::int64_t, nas::Batch& b) {
    images += b.labels.size(0);
    return true;
  });
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print("loader_images_per_s {:.2f}\nloader_data {}\n", static_cast<double>(images) / seconds,
             cifar.empty() ? "synthetic" : "cifar10");

  print_peak_memory();
  return 0;
}
