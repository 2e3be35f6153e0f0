// The data path at ImageNet size, for bench/imagenet.py: dataset/image_folder decoding (libjpeg-turbo),
// antialiased resize of the shorter side, centre crop, then the loader's flip and normalization.
//
//   build/release/bin/nas_bench_image_loader [--size 224] [--batch 16] [--workers 1] [--images 96]
//                                            [--threads CORES]
//
// Writes --images JPEGs of 500x375 pixels (about ImageNet's average size; quality 90, content with
// the detail of a photograph: smooth gradients plus pixel noise) into two class folders of a scratch
// folder, reads them twice through the loader (the first pass warms the file cache) and prints the
// second pass's images/s. --size 331 resizes the shorter side to 378 (331 x 256/224) before the crop.
#include <turbojpeg.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <torch/torch.h>

#include "nas/config.hpp"
#include "nas/data.hpp"
#include "nas/loader.hpp"
#include "nas/log.hpp"
#include "flags.hpp"

namespace fs = std::filesystem;

namespace {

using bench::flag;

void write_jpeg(const fs::path& file, int width, int height, std::mt19937& rng) {
  std::vector<unsigned char> rgb(static_cast<std::size_t>(width) * height * 3);
  std::uniform_real_distribution<double> phase(0, 6.28);
  std::normal_distribution<double> noise(0, 12);
  const double p[3] = {phase(rng), phase(rng), phase(rng)};
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < 3; ++c) {
        double v = 128 + 90 * std::sin(x * 0.021 * (c + 1) + p[c]) * std::cos(y * 0.017 + p[(c + 1) % 3]) + noise(rng);
        rgb[(static_cast<std::size_t>(y) * width + x) * 3 + c] = static_cast<unsigned char>(std::clamp(v, 0.0, 255.0));
      }
  tjhandle tj = tjInitCompress();
  unsigned char* jpeg = nullptr;
  unsigned long bytes = 0;
  if (tjCompress2(tj, rgb.data(), width, 0, height, TJPF_RGB, &jpeg, &bytes, TJSAMP_420, 90, 0) != 0)
    throw std::runtime_error(fmt::format("cannot encode {}: {}", file.string(), tjGetErrorStr2(tj)));
  std::ofstream(file, std::ios::binary).write(reinterpret_cast<const char*>(jpeg), static_cast<std::streamsize>(bytes));
  tjFree(jpeg);
  tjDestroy(tj);
}

}  // namespace

int main(int argc, char** argv) {
  const std::int64_t size = flag(argc, argv, "size", 224), batch = flag(argc, argv, "batch", 16);
  const std::int64_t images = flag(argc, argv, "images", 96);
  at::set_num_threads(static_cast<int>(flag(argc, argv, "threads", std::max(1u, std::thread::hardware_concurrency()))));

  const fs::path root = fs::temp_directory_path() / fmt::format("nas_bench_image_loader.{}", getpid());
  std::mt19937 rng(0);
  for (std::int64_t i = 0; i < images; ++i) {
    const fs::path folder = root / "train" / (i % 2 ? "b" : "a");
    fs::create_directories(folder);
    write_jpeg(folder / fmt::format("{:04}.jpg", i), 500, 375, rng);
  }

  nas::Logger log(nas::Logger::Level::warn);
  nas::Registry registry;
  nas::load_plugins(registry, {nas::default_plugin_dir()});
  nas::Context context{.log = log, .registry = &registry};
  const nas::Entry& entry = registry.require("dataset", "image_folder");
  std::map<std::string, nas::Value, std::less<>> values{
      {"root", root.string()}, {"size", size}, {"resize", static_cast<std::int64_t>(std::lround(size * 256.0 / 224.0))}};
  for (const nas::ParamSpec& spec : entry.schema)
    if (spec.default_value) values.emplace(spec.name, *spec.default_value);
  auto dataset = registry.create<nas::Dataset>("image_folder", nas::Params(std::move(values)), context, {nas::Split::train});

  nas::LoaderOptions options;
  options.batch_size = batch;
  options.train = true;
  options.augmentation = {0, true};
  const nas::DatasetInfo info = dataset->info();
  options.mean = info.mean;
  options.std = info.std;
  options.workers = flag(argc, argv, "workers", 1);
  std::vector<std::int64_t> indices(static_cast<std::size_t>(dataset->size()));
  std::iota(indices.begin(), indices.end(), 0);
  nas::Loader loader(*dataset, indices, options, 0);

  double rate = 0;
  for (std::int64_t epoch = 0; epoch < 2; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    std::int64_t seen = 0;
    loader.for_each(epoch, 0, [&](std::int64_t, nas::Batch& b) {
      seen += b.labels.size(0);
      return true;
    });
    rate = static_cast<double>(seen) / std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  fs::remove_all(root);
  fmt::print("size {}\nworkers {}\nimages_per_s {:.2f}\n", size, options.workers, rate);
  return 0;
}
