// How well each zero-cost proxy ranks NAS-Bench-201 cells: the Spearman rank correlation between a
// proxy, computed on the untrained network (N=5, F=64: C=16, the benchmark's own size) on one batch of
// real CIFAR-10 training images, and the cell's 200-epoch CIFAR-10 test accuracy, over random cells.
//
//   build/release/bin/nas_bench_proxies [--cells 1000] [--batch 64] [--seed 0] [--threads 2]
//
// Data from ../shared/data (nasbench201/nb201_200epoch_test.csv, cifar10/cifar-10-batches-bin).
// Prints the correlation of each proxy and the seconds per cell it took.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include <ATen/Parallel.h>
#include <fmt/format.h>

#include "ablation/statistics.hpp"
#include "nas/data.hpp"
#include "nas/dataset.hpp"
#include "nas/loader.hpp"
#include "nas/log.hpp"
#include "nas/proxies.hpp"
#include "nas/seed.hpp"
#include "nas/space.hpp"
#include "flags.hpp"

namespace fs = std::filesystem;

namespace {

using bench::flag;

double spearman(const std::vector<double>& x, const std::vector<double>& y) {
  const std::vector<double> rx = nas::stats::average_ranks(x), ry = nas::stats::average_ranks(y);
  const double mx = nas::stats::mean(rx), my = nas::stats::mean(ry);
  double sxy = 0, sxx = 0, syy = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    sxy += (rx[i] - mx) * (ry[i] - my);
    sxx += (rx[i] - mx) * (rx[i] - mx);
    syy += (ry[i] - my) * (ry[i] - my);
  }
  return sxy / std::sqrt(sxx * syy);
}

}  // namespace

int main(int argc, char** argv) {
  const std::int64_t cells = flag(argc, argv, "cells", 1000), batch_size = flag(argc, argv, "batch", 64);
  const auto seed = static_cast<std::uint64_t>(flag(argc, argv, "seed", 0));
  at::set_num_threads(static_cast<int>(flag(argc, argv, "threads", 2)));
  const fs::path data = fs::path(NAS_SOURCE_DIR) / "../shared/data";

  // cell string -> 200-epoch CIFAR-10 test accuracy
  std::vector<std::pair<std::string, double>> table;
  {
    std::ifstream in(data / "nasbench201" / "nb201_200epoch_test.csv");
    if (!in) {
      fmt::print(stderr, "no {}: see ../shared/data/README.md\n", (data / "nasbench201" / "nb201_200epoch_test.csv").string());
      return 2;
    }
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::vector<std::string> fields;
      std::istringstream row(line);
      for (std::string field; std::getline(row, field, ',');) fields.push_back(field);
      if (fields.size() >= 4) table.emplace_back(fields[3], std::stod(fields[0]));
    }
  }
  std::mt19937_64 rng(seed);
  std::shuffle(table.begin(), table.end(), rng);
  table.resize(std::min<std::size_t>(table.size(), static_cast<std::size_t>(cells)));

  nas::Logger log(nas::Logger::Level::warn);
  nas::Registry registry;
  nas::load_plugins(registry, {nas::default_plugin_dir()});
  const nas::Context context{.log = log, .seed = seed, .registry = &registry};
  auto defaults = [&](const std::string& kind, const std::string& name) {
    const nas::Entry& entry = registry.require(kind, name);
    return nas::default_params(entry.schema, entry.key);
  };
  auto space = registry.create<nas::Space>("nasbench201", defaults("space", "nasbench201"), context, {});
  const nas::Params model = nas::default_params(registry.require("space", "nasbench201").models.schema, "space/nasbench201");
  std::map<std::string, nas::Value, std::less<>> cifar{{"root", (data / "cifar10" / "cifar-10-batches-bin").string()}};
  auto train = registry.create<nas::Dataset>("cifar10", nas::Params(cifar), context, {nas::Split::train});
  const nas::DatasetInfo info = train->info();

  // One batch of training images, the same for every cell, normalized as training would.
  std::vector<std::int64_t> order(static_cast<std::size_t>(train->size()));
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::int64_t>(i);
  std::shuffle(order.begin(), order.end(), rng);
  order.resize(static_cast<std::size_t>(batch_size));
  nas::LoaderOptions loading;
  loading.batch_size = batch_size;
  loading.workers = 0;
  loading.mean = info.mean;
  loading.std = info.std;
  const nas::Batch batch = nas::Loader(*train, order, loading, seed).batch(0, 0);
  const nas::DataShape shape{static_cast<std::int64_t>(info.class_names.size()), info.channels, info.height, info.width};

  std::map<std::string, std::vector<double>> scores;
  std::map<std::string, double> seconds;
  std::vector<double> accuracy;
  for (std::size_t c = 0; c < table.size(); ++c) {
    at::manual_seed(nas::derive_seed(seed, nas::stream("child"), c));
    auto network = space->build(table[c].first, model, shape);
    for (const std::string& proxy : nas::proxy_names()) {
      const auto start = std::chrono::steady_clock::now();
      scores[proxy].push_back(nas::proxy_score(*network, proxy, batch.images, batch.labels));
      seconds[proxy] += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    accuracy.push_back(table[c].second);
    if ((c + 1) % 100 == 0) fmt::print(stderr, "{}/{} cells\n", c + 1, table.size());
  }
  fmt::print("NAS-Bench-201, CIFAR-10: Spearman rank correlation with the 200-epoch test accuracy over {} random "
             "cells (seed {}), one batch of {} training images\n", table.size(), seed, batch_size);
  fmt::print("{:<10} {:>9} {:>14}\n", "proxy", "spearman", "ms per cell");
  for (const std::string& proxy : nas::proxy_names()) {
    // A proxy can be -inf or NaN for a cell (naswot: a singular kernel); it ranks last.
    std::vector<double> v = scores[proxy];
    for (double& x : v)
      if (!std::isfinite(x)) x = -1e300;
    fmt::print("{:<10} {:>9.3f} {:>14.1f}\n", proxy, spearman(v, accuracy), 1e3 * seconds[proxy] / static_cast<double>(table.size()));
  }
  return 0;
}
