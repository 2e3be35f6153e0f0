// Running an ablation: the folder, its runs as `nas-host run` processes (up to --jobs at once in each
// process; the processes of a launcher claim runs one at a time through the c10d store), progress,
// and the statistics at the end.
#include "nas/ablation.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <csignal>
#include <fstream>
#include <map>
#include <optional>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "ablation/plan.hpp"
#include "cluster.hpp"
#include "duration_text.hpp"
#include "nas/pipeline.hpp"
#include "nas/report.hpp"
#include "spawn.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace nas {
namespace {

using ablation::Plan;
using ablation::Run;

constexpr std::chrono::seconds kStoreTimeout{300};

// Bytes of memory available to new processes (MemAvailable), or 0 when unknown.
std::int64_t available_memory() {
  std::ifstream in("/proc/meminfo");
  for (std::string key; in >> key;) {
    std::int64_t kib = 0;
    in >> kib;
    if (key == "MemAvailable:") return kib * 1024;
    in.ignore(256, '\n');
  }
  return 0;
}

// Processes of this launcher on this machine (each runs its own jobs).
std::int64_t local_processes(const World& world) {
  if (const char* local = std::getenv("LOCAL_WORLD_SIZE")) return std::max(1, std::atoi(local));
  if (const char* slurm = std::getenv("SLURM_NTASKS_PER_NODE")) return std::max(1, std::atoi(slurm));  // "2(x3)": 2
  return world.launcher == "nas-host" ? world.size : 1;
}

// The cores this process may run on (its affinity mask: what a container or SLURM gives it).
std::int64_t usable_cores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

// How many runs at once: one per core share (a run's own thread count when its config fixes one),
// no more than the memory holds (a run that trains networks counts 2 GiB, a lookup 0.5 GiB) and no
// more than there are runs. Small networks gain little from a second thread; a second run doubles the work done.
std::int64_t default_jobs(const std::vector<const Run*>& runs, std::int64_t cores) {
  std::int64_t by_cores = cores, per_run = 512LL << 20;
  for (const Run* run : runs) {
    if (run->threads > 0) by_cores = std::min(by_cores, std::max<std::int64_t>(1, cores / run->threads));
    if (run->trains) per_run = 2048LL << 20;
  }
  const std::int64_t memory = available_memory();
  const std::int64_t by_memory = memory > 0 ? std::max<std::int64_t>(1, memory / per_run) : by_cores;
  return std::max<std::int64_t>(1, std::min({by_cores, by_memory, static_cast<std::int64_t>(runs.size())}));
}

// The launcher's variables: a run is a process of its own, not a rank of the ablation's processes.
const std::map<std::string, std::optional<std::string>> kRunEnvironment{
    {"RANK", std::nullopt}, {"WORLD_SIZE", std::nullopt}, {"LOCAL_RANK", std::nullopt},
    {"LOCAL_WORLD_SIZE", std::nullopt}, {"MASTER_ADDR", std::nullopt}, {"MASTER_PORT", std::nullopt},
    {"SLURM_PROCID", std::nullopt}, {"SLURM_NTASKS", std::nullopt}, {"SLURM_LOCALID", std::nullopt},
    {"TORCHELASTIC_RUN_ID", std::nullopt}, {"TORCHELASTIC_USE_AGENT_STORE", std::nullopt}};

std::string last_line(const fs::path& file) {
  std::ifstream in(file);
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  return last;
}

class Executor {
 public:
  Executor(const Plan& plan, fs::path dir, Logger& log, const AblationOptions& options)
      : plan_(plan), dir_(std::move(dir)), log_(log), options_(options) {}

  /// Runs every unfinished run this process claims; returns how many of them failed.
  std::int64_t run(const std::vector<const Run*>& pending, Cluster* cluster, std::int64_t local) {
    const std::int64_t cores = usable_cores() / local;
    const std::int64_t jobs = options_.jobs > 0 ? options_.jobs : default_jobs(pending, std::max<std::int64_t>(1, cores));
    threads_ = std::max<std::int64_t>(1, std::max<std::int64_t>(1, cores) / jobs);
    log_.info("ablation '{}': {} runs, {} to do; {} at once here, {} threads each unless a run's config sets them",
              plan_.name, plan_.runs.size(), pending.size(), jobs, threads_);
    start_ = Clock::now();
    done_at_start_ = count_finished();
    std::size_t next = 0;
    auto claim = [&]() -> const Run* {
      const std::size_t i = cluster ? static_cast<std::size_t>(cluster->store().add("ablation/next", 1) - 1) : next++;
      return i < pending.size() ? pending[i] : nullptr;
    };
    bool more = true;
    while (more || !running_.empty()) {
      while (more && static_cast<std::int64_t>(running_.size()) < jobs) {
        const Run* run = claim();
        if (!run) {
          more = false;
          break;
        }
        start(*run);
      }
      if (running_.empty()) break;
      int status = 0;
      const pid_t pid = waitpid(-1, &status, 0);
      if (pid < 0) throw Error("ablate: waitpid failed");
      auto it = running_.find(pid);
      if (it == running_.end()) {
        exited_.emplace(pid, status);  // one of the processes started with --nproc
        continue;
      }
      finish(it->second, status);
      running_.erase(it);
    }
    return failed_;
  }

  /// A process started with --nproc that finished before this one waited for it.
  std::optional<int> exited(pid_t pid) {
    auto it = exited_.find(pid);
    if (it == exited_.end()) return std::nullopt;
    return it->second;
  }

  std::size_t count_finished() const {
    std::size_t n = 0;
    for (const Run& run : plan_.runs) n += ablation::finished(dir_, run);
    return n;
  }

  void progress(const std::string& event) const {
    const std::size_t done = count_finished();
    const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
    const std::size_t gained = done - std::min(done, done_at_start_);
    const std::string eta = gained > 0 && done < plan_.runs.size()
                                ? fmt::format(", ETA {}", duration_text(elapsed / static_cast<double>(gained) *
                                                                        static_cast<double>(plan_.runs.size() - done)))
                                : "";
    log_.info("[ablate] {}/{} runs done, {} running here, {} failed{}{}", done, plan_.runs.size(), running_.size(),
              failed_, eta, event.empty() ? "" : " - " + event);
  }

 private:
  struct Running {
    const Run* run;
    Clock::time_point started;
  };

  void start(const Run& run) {
    const fs::path rdir = ablation::run_dir(dir_, run);
    std::vector<std::string> args{"nas-host", "run"};
    if (fs::exists(rdir / "config.yaml")) {
      args.insert(args.end(), {"--resume", rdir.string()});
    } else {
      std::error_code ec;
      fs::remove_all(rdir, ec);  // a folder without its config holds nothing of value
      args.insert(args.end(), {ablation::config_file(dir_, run).string(), "--run-dir", rdir.string()});
    }
    if (run.threads == 0) args.insert(args.end(), {"--threads", std::to_string(threads_)});
    args.insert(args.end(), options_.child_args.begin(), options_.child_args.end());
    // die_with_parent: an ablation killed with -9 takes its runs along; --resume restarts them
    const pid_t pid = spawn(options_.executable, args, {dir_ / (run.id + ".log"), kRunEnvironment, true});
    running_.emplace(pid, Running{&run, Clock::now()});
    log_.debug("ablate: started {} (pid {})", run.id, pid);
  }

  void finish(const Running& r, int status) {
    const double took = std::chrono::duration<double>(Clock::now() - r.started).count();
    if (ablation::finished(dir_, *r.run)) {
      progress(fmt::format("{} finished in {}", r.run->id, duration_text(took)));
      return;
    }
    ++failed_;
    const std::string how = WIFSIGNALED(status) ? fmt::format("killed by signal {}", WTERMSIG(status))
                                                : fmt::format("exit {}", WEXITSTATUS(status));
    const fs::path log_file = dir_ / (r.run->id + ".log");
    log_.warn("ablate: run {} failed ({}): {}; its output is in {}", r.run->id, how, last_line(log_file),
              log_file.string());
    progress("");
  }

  const Plan& plan_;
  fs::path dir_;
  Logger& log_;
  const AblationOptions& options_;
  std::int64_t threads_ = 1;
  std::map<pid_t, Running> running_;
  std::map<pid_t, int> exited_;
  std::int64_t failed_ = 0;
  Clock::time_point start_;
  std::size_t done_at_start_ = 0;
};

// Starts ranks 1..nproc on this machine, each `nas-host ablate --resume DIR` with the launcher's variables.
std::vector<pid_t> start_processes(const Cluster& cluster, const AblationOptions& options, const fs::path& dir) {
  std::vector<pid_t> pids;
  for (std::int64_t rank = 1; rank <= options.nproc; ++rank) {
    std::vector<std::string> args{"nas-host", "ablate", "--resume", dir.string()};
    if (options.jobs > 0) args.insert(args.end(), {"--jobs", std::to_string(options.jobs)});
    args.insert(args.end(), options.child_args.begin(), options.child_args.end());
    // Every rank, rank 0 too, does ablation runs: rank r on GPU r.
    pids.push_back(spawn(options.executable, args, {{}, cluster.launch_environment(rank, rank), true}));
  }
  return pids;
}

// Every process of the launcher runs this: rank 0 has the folder, the others learn it from the store.
int execute(const Plan* plan_made, fs::path dir, Logger& log, const AblationOptions& options) {
  World world = World::from_environment();
  if (options.nproc > 0) {
    if (world.size > 1) throw UsageError("ablate: --nproc starts processes itself; do not combine it with torchrun or SLURM");
    world = World{0, options.nproc + 1, 0, "127.0.0.1", 0, false, "nas-host", options.nproc + 1};
  }
  std::optional<Cluster> cluster;
  if (world.size > 1) {
    cluster.emplace(world, kStoreTimeout);
    if (world.coordinator()) cluster->store().set("ablation/dir", fs::absolute(dir).string());
    else dir = cluster->store().get_to_str("ablation/dir");  // waits for rank 0
  }
  const Plan plan = plan_made ? *plan_made : ablation::read_plan(dir);
  // One coordinator per folder: a second `ablate --resume DIR` would run the same runs twice. The
  // lock goes with the process, whatever kills it.
  const int lock = world.coordinator() ? ::open((dir / "ablation.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644) : -1;
  if (world.coordinator() && (lock < 0 || flock(lock, LOCK_EX | LOCK_NB) != 0))
    throw UsageError(fmt::format("ablate: another nas-host ablate is working on '{}'; wait for it or stop it",
                                 dir.string()));
  if (world.coordinator()) log.tee_to(dir / "ablation.log");
  // The runs to do, as rank 0 saw them: every process claims from the same list.
  std::vector<const Run*> pending;
  if (!cluster || world.coordinator()) {
    for (const Run& run : plan.runs)
      if (!ablation::finished(dir, run)) pending.push_back(&run);
    if (cluster) {
      nlohmann::json ids = nlohmann::json::array();
      for (const Run* run : pending) ids.push_back(run->id);
      cluster->store().set("ablation/pending", ids.dump());
    }
  } else {
    const auto ids = nlohmann::json::parse(cluster->store().get_to_str("ablation/pending"));
    for (const std::string id : ids)
      for (const Run& run : plan.runs)
        if (run.id == id) pending.push_back(&run);
  }
  std::vector<pid_t> processes;
  if (options.nproc > 0) processes = start_processes(*cluster, options, dir);
  if (cluster && world.coordinator())
    log.info("{} processes ({}) share the runs; store on {}:{}", world.size, world.launcher, world.master_addr, cluster->port());

  Executor executor(plan, dir, log, options);
  const std::int64_t local = options.nproc > 0 ? options.nproc + 1 : local_processes(world);
  if (cluster && !world.coordinator()) {
    // Leaving is counted however this process ends (an error too), so that rank 0 does not wait for it.
    struct Leave {
      Cluster& cluster;
      ~Leave() {
        try {
          cluster.store().add("ablation/left", 1);
        } catch (...) {
        }
      }
    } leave{*cluster};
    return executor.run(pending, &*cluster, local) > 0 ? 1 : 0;
  }
  executor.run(pending, cluster ? &*cluster : nullptr, local);
  // Rank 0 waits for the other processes: its own children (--nproc), or the launcher's (torchrun and
  // SLURM stop every process when one dies, so a count in the store does not wait forever).
  for (pid_t pid : processes) {
    if (executor.exited(pid)) continue;
    int status = 0;
    waitpid(pid, &status, 0);
  }
  if (cluster && processes.empty()) {
    auto last = Clock::now();
    while (cluster->store().add("ablation/left", 0) < world.size - 1) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      if (Clock::now() - last > std::chrono::seconds(30)) {
        executor.progress("waiting for the other processes");
        last = Clock::now();
      }
    }
  }
  const std::string table = ablation::analyze(plan, dir);
  const std::size_t done = executor.count_finished();
  fmt::print("\n{}\n", table);
  std::fflush(stdout);  // before the log's lines on stderr
  const std::optional<fs::path> report = write_report_or_warn(dir, nullptr, log);
  log.info("ablation '{}': {} of {} runs finished; results in {} (ablation.md, ablation.json, ablation.csv){}", plan.name,
           done, plan.runs.size(), dir.string(), report ? "; report: " + report->string() : "");
  if (done < plan.runs.size()) {
    std::vector<std::string> unfinished;
    for (const Run& run : plan.runs)
      if (!ablation::finished(dir, run)) unfinished.push_back(run.id);
    const std::size_t shown = std::min<std::size_t>(unfinished.size(), 10);
    log.error("{} runs did not finish: {}{} (each one's output: {}/RUN.log); 'nas-host ablate --resume {}' runs them "
              "again", unfinished.size(), fmt::join(unfinished.begin(), unfinished.begin() + static_cast<std::ptrdiff_t>(shown), ", "),
              shown < unfinished.size() ? ", ..." : "", dir.string(), dir.string());
    return 1;
  }
  return 0;
}

}  // namespace

int ablate(const fs::path& file, const std::vector<std::string>& overrides, const RegistryLoader& load_plugins,
           Logger& log, const AblationOptions& options) {
  if (World::from_environment().rank > 0) {  // rank 0 makes (or checks) the plan
    if (options.dry_run) return 0;
    return execute(nullptr, {}, log, options);
  }
  const Plan plan = ablation::make_plan(file, overrides, load_plugins, options.plugin_dirs);
  for (const std::string& warning : plan.warnings) log.warn("ablate: {}", warning);
  if (options.dry_run) {
    fmt::print("ablation '{}': {} arms x {} grid points x {} seeds = {} runs, each validated:\n", plan.name,
               plan.arms.size(), plan.grid_points, plan.seeds.size(), plan.runs.size());
    for (const Run& run : plan.runs) fmt::print("  {}\n", run.id);
    std::vector<std::string> checkpoints;
    for (const auto& c : plan.settings.checkpoints) checkpoints.push_back(c.label());
    fmt::print("metrics: {}; checkpoints: {}; baseline: {} ({})\n", fmt::join(plan.settings.metrics, ", "),
               fmt::join(checkpoints, ", "), plan.settings.baseline,
               plan.settings.paired ? "paired by seed: Wilcoxon signed-rank" : "unpaired: Mann-Whitney U");
    fmt::print("folder: {}\n", (plan.output_dir / plan.name / "<UTC timestamp>").string());
    return 0;
  }
  // OUTPUT_DIR/NAME/UTC-TIMESTAMP, as a run's folder is made.
  const fs::path dir = make_run_dir(Experiment{.name = plan.name, .output_dir = plan.output_dir.string()}, std::nullopt);
  ablation::write_plan(plan, dir);
  log.info("ablation '{}' in {}", plan.name, dir.string());
  return execute(&plan, dir, log, options);
}

int resume_ablation(const fs::path& dir, Logger& log, const AblationOptions& options) {
  if (World::from_environment().rank == 0 && !fs::is_regular_file(dir / "plan.json"))
    throw UsageError(fmt::format("ablate: '{}' is not an ablation folder (it has no plan.json)", dir.string()));
  return execute(nullptr, dir, log, options);
}

}  // namespace nas
