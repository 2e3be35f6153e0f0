// Running a resolved pipeline.
#include "nas/pipeline.hpp"

#include <chrono>
#include <ctime>
#include <fstream>
#include <thread>

#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <torch/cuda.h>

namespace fs = std::filesystem;

namespace nas {
namespace {

std::string utc_timestamp() {
  std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y%m%dT%H%M%SZ", &tm);
  return text;
}

}  // namespace

fs::path make_run_dir(const Experiment& experiment, const std::optional<fs::path>& requested) {
  std::error_code ec;
  if (requested) {
    if (fs::exists(*requested) && !fs::is_empty(*requested, ec))
      throw UsageError(fmt::format("run directory '{}' already exists and is not empty; a run never overwrites another",
                                   requested->string()));
    fs::create_directories(*requested, ec);
    if (ec) throw Error(fmt::format("cannot create run directory '{}': {}", requested->string(), ec.message()));
    return *requested;
  }
  fs::path parent = experiment.output_dir / experiment.name;
  fs::create_directories(parent, ec);
  if (ec) throw Error(fmt::format("cannot create '{}': {}", parent.string(), ec.message()));
  std::string stamp = utc_timestamp();
  // create_directory is atomic: of two runs started in the same second, each gets its own folder.
  for (int suffix = 0;; ++suffix) {
    fs::path dir = parent / (suffix == 0 ? stamp : fmt::format("{}-{}", stamp, suffix));
    if (fs::create_directory(dir, ec)) return dir;
    if (ec) throw Error(fmt::format("cannot create run directory '{}': {}", dir.string(), ec.message()));
  }
}

std::string plan_text(const PipelineConfig& config) {
  std::string text = fmt::format("plan for '{}' (seed {}):\n", config.experiment.name, config.experiment.seed);
  int index = 1;
  for (const StageConfig& stage : config.stages) {
    text += fmt::format("  {}. {}: {}\n", index++, stage.def->name, stage.def->doc);
    for (const Slot& slot : stage.def->slots)
      for (const PluginChoice& choice : stage.slots.at(slot.name))
        text += fmt::format("       {}: {} {} ({})\n", slot.name, choice.entry->key, choice.entry->plugin->version,
                            choice.entry->plugin->file.string());
  }
  return text;
}

void run_pipeline(const PipelineConfig& config, const Registry& registry, Logger& log, const fs::path& run_dir,
                  bool resumed) {
  if (!resumed) {
    std::ofstream out(run_dir / "config.yaml");
    out << config.resolved_yaml;
    if (!out) throw Error(fmt::format("cannot write '{}'", (run_dir / "config.yaml").string()));
  }
  log.tee_to(run_dir / "log.txt");
  int threads = config.experiment.threads > 0 ? static_cast<int>(config.experiment.threads)
                                              : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(threads);  // LibTorch may start with one thread on some machines
  c10::Device device = torch::cuda::is_available() ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  log.info("{} '{}' in {} ({} threads, device {})", resumed ? "resuming run" : "run", config.experiment.name,
           run_dir.string(), threads, device.str());

  Context context{log, static_cast<std::uint64_t>(config.experiment.seed), run_dir, device, &registry};
  for (const StageConfig& stage : config.stages) {
    auto start = std::chrono::steady_clock::now();
    log.info("stage '{}' started", stage.def->name);
    stage.def->run(stage, registry, context);
    std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    log.info("stage '{}' done in {:.1f} s", stage.def->name, took.count());
  }
  log.info("run finished; outputs in {}", run_dir.string());
}

}  // namespace nas
