// Running a resolved pipeline.
#include "nas/pipeline.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <exception>
#include <fstream>
#include <thread>

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/cuda.h>

#include "cluster.hpp"
#include "nas/files.hpp"
#include "nas/loader.hpp"
#include "nas/report.hpp"
#include "spawn.hpp"
#include "stages/evaluator_process.hpp"

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
  fs::path parent = fs::path(experiment.output_dir) / experiment.name;
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

fs::path finished_marker(const fs::path& run_dir) { return run_dir / "finished.json"; }

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

std::int64_t launcher_rank() { return World::from_environment().rank; }

namespace {

// Starts worker ranks 1..nproc on this machine, each `nas-host run --resume RUN_DIR` with the
// launcher's variables; `pids` holds each as soon as it runs (for StopWorkersOnError).
void start_workers(const Cluster& cluster, const RunOptions& options, const fs::path& run_dir, std::vector<pid_t>& pids) {
  if (options.executable.empty()) throw Error("run: cannot start worker processes without the nas-host executable");
  for (std::int64_t rank = 1; rank <= options.nproc; ++rank) {
    std::vector<std::string> args{"nas-host", "run"};
    args.insert(args.end(), options.child_args.begin(), options.child_args.end());
    args.insert(args.end(), {"--resume", run_dir.string()});
    // No die_with_parent: a worker whose coordinator died says so in one line before it stops.
    // Workers on GPUs 0..nproc-1: the coordinator only coordinates (docs/search.md).
    pids.push_back(spawn(options.executable, args, {{}, cluster.launch_environment(rank, rank - 1)}));
  }
}

// Waits for the workers this process started, saying which failed, and forgets them. With `stop`,
// first asks them to stop (SIGTERM, not reported) and kills any still there 10 s later.
void reap_workers(std::vector<pid_t>& pids, Logger& log, bool stop) {
  if (stop) {
    for (pid_t pid : pids) kill(pid, SIGTERM);
    log.info("stopping the {} worker process{} this run started", pids.size(), pids.size() == 1 ? "" : "es");
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (pid_t pid : pids) {
    int status = 0;
    pid_t done = 0;
    for (;;) {
      done = waitpid(pid, &status, stop ? WNOHANG : 0);
      if (done < 0 && errno == EINTR) continue;
      if (done != 0) break;
      if (std::chrono::steady_clock::now() > deadline) kill(pid, SIGKILL);  // still there (stop only)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (done != pid) continue;  // not our child any more
    if (WIFSIGNALED(status) && !(stop && WTERMSIG(status) == SIGTERM))
      log.warn("worker process {} was killed by signal {}", pid, WTERMSIG(status));
    else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
      log.warn("worker process {} exited with status {}", pid, WEXITSTATUS(status));
  }
  pids.clear();
}

// Stops the workers this process started (`pids`) when it leaves by an exception, i.e. a stage
// failed here: without their coordinator they have nothing to do, and one that has not connected yet
// would retry the connection for up to twice the store's timeout, long after this command returned.
class StopWorkersOnError {
 public:
  StopWorkersOnError(std::vector<pid_t>& pids, Logger& log) : pids_(pids), log_(log) {}
  StopWorkersOnError(const StopWorkersOnError&) = delete;
  StopWorkersOnError& operator=(const StopWorkersOnError&) = delete;
  ~StopWorkersOnError() {
    if (std::uncaught_exceptions() == exceptions_ || pids_.empty()) return;
    try {
      reap_workers(pids_, log_, /*stop=*/true);
    } catch (...) {  // a log that cannot be written: the workers have their SIGTERM, the first error stands
    }
  }

 private:
  std::vector<pid_t>& pids_;
  Logger& log_;
  const int exceptions_ = std::uncaught_exceptions();
};

// Intra-op threads for a stage: experiment.threads when set; else the machine's cores, split among
// the processes on it that compute the stage. In a data-parallel stage every process trains; in the
// others the coordinator only coordinates (all its cores are its own, for the few stages that compute
// in it alone), so the workers share the cores: under nas-host --nproc the coordinator is one of
// this machine's processes, under torchrun or SLURM it may be elsewhere and counts where it is.
int stage_threads(const PipelineConfig& config, const World& world, const StageDef* stage) {
  if (config.experiment.threads > 0) return static_cast<int>(config.experiment.threads);
  const auto cores = static_cast<std::int64_t>(std::max(1u, std::thread::hardware_concurrency()));
  std::int64_t sharing = world.local_size;
  if (!(stage && stage->data_parallel)) {
    if (world.coordinator()) return static_cast<int>(cores);
    if (world.launcher == "nas-host") sharing = std::max<std::int64_t>(1, sharing - 1);
  }
  return static_cast<int>(std::max<std::int64_t>(1, cores / sharing));
}

// Runs a stage with its threads (stage_threads), saying so when they are not the process's own.
void with_stage_threads(const PipelineConfig& config, const World& world, const StageConfig& stage, Logger& log,
                        const std::function<void()>& body) {
  const int own = at::get_num_threads(), threads = stage_threads(config, world, stage.def);
  if (threads != own) {
    log.info("stage '{}': {} thread{} in each of this machine's {} processes", stage.def->name, threads,
             threads == 1 ? "" : "s", world.local_size);
    at::set_num_threads(threads);
  }
  body();
  at::set_num_threads(own);
}

// A GPU of its own for each process (LOCAL_RANK), or a share of one when the config says so.
c10::Device pick_device(std::int64_t local_rank, const Experiment& experiment) {
  if (!torch::cuda::is_available()) return c10::Device(c10::kCPU);
  const std::int64_t gpu = local_rank / experiment.processes_per_gpu;
  const auto gpus = static_cast<std::int64_t>(torch::cuda::device_count());
  if (gpu >= gpus)
    throw UsageError(fmt::format("LOCAL_RANK {} would use GPU {}, but this machine has {}; to share GPUs, set "
                                 "experiment.processes_per_gpu to {} or more", local_rank, gpu, gpus,
                                 (local_rank + gpus) / gpus));
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(gpu));
}

// The first "model name" of /proc/cpuinfo.
std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (const std::size_t colon = line.find(':'); line.rfind("model name", 0) == 0 && colon != std::string::npos)
      return line.substr(std::min(line.size(), line.find_first_not_of(" \t", colon + 1)));
  return "unknown CPU";
}

// run.json: what ran where, for the report's summary; a resume adds when it happened.
void record_run(const PipelineConfig& config, const fs::path& run_dir, const RunOptions& options, const World& world,
                int threads, const c10::Device& device) {
  const fs::path file = run_dir / "run.json";
  if (options.resumed) {
    std::ifstream in(file);
    nlohmann::ordered_json run = nlohmann::ordered_json::parse(in, nullptr, false);
    if (!run.is_object()) return;  // a run from before run.json existed
    run["resumed_at"].push_back(utc_timestamp());
    write_file(file, run.dump(2) + "\n");
    return;
  }
  nlohmann::ordered_json plugins = nlohmann::ordered_json::array();
  for (const StageConfig& stage : config.stages)
    for (const Slot& slot : stage.def->slots)
      for (const PluginChoice& choice : stage.slots.at(slot.name))
        plugins.push_back({{"slot", stage.def->name + "." + slot.name}, {"key", choice.entry->key},
                           {"version", choice.entry->plugin->version}, {"file", choice.entry->plugin->file.string()}});
  std::array<char, 256> host{};
  gethostname(host.data(), host.size() - 1);
  const double memory = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGESIZE));
  nlohmann::ordered_json run{
      {"name", config.experiment.name}, {"seed", config.experiment.seed}, {"started_at", utc_timestamp()},
      {"resumed_at", nlohmann::ordered_json::array()},
      {"machine", {{"host", host.data()}, {"cpu", cpu_model()}, {"cores", std::thread::hardware_concurrency()},
                   {"memory_gib", memory / (1024.0 * 1024 * 1024)}, {"processes", world.size}, {"threads", threads},
                   {"device", device.str()}, {"build", host_fingerprint()}}},
      {"plugins", plugins}};
  write_file(file, run.dump(2) + "\n");
}

constexpr std::chrono::seconds kStoreTimeout{300};  // connecting, and a worker waiting for rank 0

// How this process starts evaluator processes; none without the executable.
std::optional<EvaluatorProcesses> evaluator_processes(const RunOptions& options, const fs::path& run_dir,
                                                      const fs::path& log_file, int threads) {
  if (options.executable.empty()) return std::nullopt;
  return EvaluatorProcesses{options.executable, options.child_args, fs::absolute(run_dir), fs::absolute(log_file), threads};
}

}  // namespace

void run_pipeline(const PipelineConfig& config, const Registry& registry, Logger& log, const fs::path& run_dir,
                  const RunOptions& options) {
  if (!options.resumed) {
    write_file(run_dir / "config.yaml", config.resolved_yaml);
  }
  log.tee_to(run_dir / "log.txt");
  World world = World::from_environment();
  if (options.nproc > 0) {
    if (world.size > 1) throw UsageError("run: --nproc starts workers itself; do not combine it with torchrun or SLURM");
    // Loopback only, a free port; every process on this machine.
    world = World{0, options.nproc + 1, 0, "127.0.0.1", 0, false, "nas-host", options.nproc + 1};
  }
  std::optional<Cluster> cluster;
  std::vector<pid_t> workers;
  const StopWorkersOnError stop_workers_on_error(workers, log);
  if (world.size > 1) {
    cluster.emplace(world, kStoreTimeout);
    cluster->store().set("run_dir", fmt::format("{}", fs::absolute(run_dir).string()));
    if (options.nproc > 0) start_workers(*cluster, options, run_dir, workers);
    log.info("{} processes ({}): this one coordinates, store on {}:{}", world.size, world.launcher, world.master_addr,
             cluster->port());
  }
  const int threads = stage_threads(config, world, nullptr);
  at::set_num_threads(threads);  // LibTorch may start with one thread on some machines
  c10::Device device = pick_device(world.local_rank, config.experiment);
  log.info("{} '{}' in {} ({} threads, device {})", options.resumed ? "resuming run" : "run", config.experiment.name,
           run_dir.string(), threads, device.str());

  record_run(config, run_dir, options, world, threads, device);

  const auto processes = evaluator_processes(options, run_dir, run_dir / "log.txt", threads);
  StageContext context{{.log = log, .seed = static_cast<std::uint64_t>(config.experiment.seed), .run_dir = run_dir,
                        .device = device, .registry = &registry},
                       cluster ? &*cluster : nullptr,
                       processes ? &*processes : nullptr};
  nlohmann::ordered_json stages = nlohmann::ordered_json::object();
  for (const StageConfig& stage : config.stages) {
    auto start = std::chrono::steady_clock::now();
    log.info("stage '{}' started", stage.def->name);
    with_stage_threads(config, world, stage, log, [&] { stage.def->run(stage, registry, context); });
    std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    log.info("stage '{}' done in {:.1f} s", stage.def->name, took.count());
    stages[stage.def->name] = took.count();
  }
  if (cluster && workers.empty()) {
    // Under torchrun's agent or SLURM, this process may serve the store: it stays until every worker
    // has left (a worker that died is waited for a minute at most).
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (cluster->store().add("left", 0) < world.size - 1 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  reap_workers(workers, log, /*stop=*/false);
  // Last, and atomically (write_file renames): whoever sees the marker sees a complete run.
  write_file(finished_marker(run_dir),
             nlohmann::ordered_json{{"finished_at", utc_timestamp()}, {"stage_seconds", stages}}.dump(2) + "\n");
  const std::optional<fs::path> report = write_report_or_warn(run_dir, &registry, log);
  log.info("run finished; outputs in {}{}", run_dir.string(), report ? "; report: " + report->string() : "");
}

void serve_pipeline(const PipelineConfig& config, const Registry& registry, Logger& log, const RunOptions& options) {
  const World world = World::from_environment();
  Cluster cluster(world, kStoreTimeout);
  const fs::path run_dir = cluster.store().get_to_str("run_dir");  // waits for rank 0
  const fs::path log_file = run_dir / fmt::format("worker-{}.log", world.rank);
  log.tee_to(log_file);
  const int threads = stage_threads(config, world, nullptr);
  at::set_num_threads(threads);
  const c10::Device device = pick_device(world.local_rank, config.experiment);
  log.info("worker rank {} of {} ({}) in {} ({} threads, device {})", world.rank, world.size, world.launcher,
           run_dir.string(), threads, device.str());
  const auto processes = evaluator_processes(options, run_dir, log_file, threads);
  StageContext context{{.log = log, .seed = static_cast<std::uint64_t>(config.experiment.seed), .run_dir = run_dir,
                        .device = device, .registry = &registry},
                       &cluster,
                       processes ? &*processes : nullptr};
  for (const StageConfig& stage : config.stages)
    if (stage.def->serve)
      with_stage_threads(config, world, stage, log, [&] { stage.def->serve(stage, registry, context); });
  try {
    cluster.store().add("left", 1);
  } catch (const c10::DistError&) {
    // Under nas-host --nproc the coordinator waits only for the workers it started; one that joined
    // by hand may find it gone once the last stage is over, with nothing left to say.
  }
}

int serve_evaluator_process(const fs::path& run_dir, const std::string& stage_name, const std::vector<fs::path>& plugin_dirs,
                            bool default_plugins, int threads, Logger& log, int fd) {
  ParentChannel parent(fd);
  try {
    const fs::path file = run_dir / "config.yaml";
    ConfigDocument doc = ConfigDocument::load(file, {});
    std::vector<fs::path> dirs = plugin_dirs;
    for (const fs::path& dir : doc.plugin_paths()) dirs.push_back(dir);
    Registry registry;
    load_plugins(registry, plugin_search_path(dirs, default_plugins, log));
    const PipelineConfig config = resolve(doc, registry);
    const auto stage = std::find_if(config.stages.begin(), config.stages.end(),
                                    [&](const StageConfig& s) { return s.def->name == stage_name; });
    if (stage == config.stages.end() || !stage->def->evaluator)
      throw UsageError(fmt::format("evaluator: '{}' has no stage '{}' that evaluates architectures", file.string(), stage_name));
    at::set_num_threads(threads);
    const StageContext context{{.log = log, .seed = static_cast<std::uint64_t>(config.experiment.seed), .run_dir = run_dir,
                                .device = pick_device(World::from_environment().local_rank, config.experiment),
                                .registry = &registry}};
    const std::unique_ptr<Evaluator> evaluator = stage->def->evaluator(*stage, registry, context);
    parent.serve(*evaluator);
    return 0;
  } catch (...) {
    return parent.fail(std::current_exception());
  }
}

}  // namespace nas
