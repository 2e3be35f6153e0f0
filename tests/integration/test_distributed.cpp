// Searches over several processes on this machine (c10d TCPStore on loopback): nas-host --nproc,
// torchrun, and a worker killed with SIGKILL mid-search.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "nas/data.hpp"
#include "nas/log.hpp"
#include "nas/space.hpp"
#include "nas/store.hpp"
#include "nas/trainer.hpp"
#include "support.hpp"
#include <torch/serialize.h>

namespace fs = std::filesystem;
using ::testing::HasSubstr;

namespace {

std::size_t count_lines_with(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) n += line.find(part) != std::string::npos;
  return n;
}

using Trajectory = std::vector<std::tuple<std::int64_t, std::vector<std::int64_t>, std::string, std::optional<double>>>;

class DistributedTest : public ::testing::Test {
 protected:
  nas::test::HostResult host(const std::string& args) { return nas::test::run_host(dir_, args); }
  static std::string config(const std::string& name) { return fmt::format("'{}/{}.yaml'", nas::test::paths::configs, name); }
  std::vector<nas::StoredEvaluation> rows(const std::string& run) { return nas::SearchStore(dir_ / run / "search.sqlite").evaluations(); }
  Trajectory trajectory(const std::string& run) {
    Trajectory out;
    for (const auto& e : rows(run)) out.emplace_back(e.index, e.decisions, std::string(nas::to_string(e.status)), e.reward);
    return out;
  }
  std::set<std::string> workers(const std::string& run) {
    std::set<std::string> out;
    for (const auto& e : rows(run))
      if (e.status == nas::EvaluationStatus::ok || e.status == nas::EvaluationStatus::failed) out.insert(e.worker);
    return out;
  }

  // The workers (host:pid) of `run` once `count` of them have finished an evaluation (fewer if the
  // coordinator stopped first).
  std::set<std::string> busy_workers(const std::string& run, pid_t coordinator, std::size_t count) {
    std::set<std::string> seen;
    while (seen.size() < count && nas::test::running(coordinator)) {
      if (fs::exists(dir_ / run / "search.sqlite")) seen = workers(run);
      usleep(20000);
    }
    return seen;
  }
  static pid_t pid_of(const std::string& worker) { return static_cast<pid_t>(std::stoi(worker.substr(worker.rfind(':') + 1))); }

  nas::test::ScratchDir scratch_;
  const fs::path& dir_ = scratch_.path();
};

TEST_F(DistributedTest, ThreeProcessesEvaluateWhatOneProcessDoes) {
  ASSERT_EQ(host(fmt::format("run {} --run-dir one", config("search_synthetic"))).code, 0);
  auto r = host(fmt::format("run {} --run-dir three --nproc 2", config("search_synthetic")));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("3 processes (nas-host)"));
  EXPECT_THAT(r.output, HasSubstr("on 2 workers"));
  EXPECT_EQ(trajectory("three"), trajectory("one"));  // rounds are synchronous: the same search
  EXPECT_FALSE(workers("three").count(""));
  EXPECT_TRUE(fs::exists(dir_ / "three" / "worker-1.log"));
  EXPECT_TRUE(fs::exists(dir_ / "three" / "worker-2.log"));
}

TEST_F(DistributedTest, TorchrunLaunchesTheSameSearch) {
  ASSERT_EQ(host(fmt::format("run {} --run-dir one", config("search_synthetic"))).code, 0);
  const std::string torchrun = fmt::format(
      "cd '{}' && env -u NAS_PLUGIN_PATH python3 -m torch.distributed.run --no-python --standalone --nproc-per-node 3 "
      "'{}' run {} --run-dir torchrun >torchrun.log 2>&1",
      dir_.string(), nas::test::paths::host, config("search_synthetic"));
  ASSERT_EQ(std::system(torchrun.c_str()), 0) << nas::test::read_text(dir_ / "torchrun.log");
  EXPECT_EQ(trajectory("torchrun"), trajectory("one"));
  EXPECT_THAT(nas::test::read_text(dir_ / "torchrun" / "worker-2.log"), HasSubstr("worker rank 2 of 3 (torchrun)"));
}

// What srun does: the same command in every task, told apart by SLURM_PROCID.
TEST_F(DistributedTest, SlurmVariablesLaunchTheSameSearch) {
  ASSERT_EQ(host(fmt::format("run {} --run-dir one", config("search_synthetic"))).code, 0);
  const int port = 20000 + getpid() % 20000;
  std::string tasks;
  for (int task = 0; task < 3; ++task)
    tasks += fmt::format("SLURM_PROCID={} SLURM_NTASKS=3 SLURM_LOCALID={} MASTER_ADDR=127.0.0.1 MASTER_PORT={} "
                         "env -u NAS_PLUGIN_PATH -u RANK '{}' run {} --run-dir slurm >task{}.log 2>&1 & ",
                         task, task, port, nas::test::paths::host, config("search_synthetic"), task);
  ASSERT_EQ(std::system(fmt::format("cd '{}' && ( {} wait )", dir_.string(), tasks).c_str()), 0);
  EXPECT_EQ(trajectory("slurm"), trajectory("one")) << nas::test::read_text(dir_ / "task0.log");
  EXPECT_THAT(nas::test::read_text(dir_ / "slurm" / "worker-1.log"), HasSubstr("worker rank 1 of 3 (slurm)"));

  // A task that cannot know where rank 0 is says so, and stops.
  int status = std::system(fmt::format("cd '{}' && SLURM_PROCID=1 SLURM_NTASKS=3 env -u MASTER_PORT -u RANK '{}' run {} "
                                       ">lost.log 2>&1", dir_.string(), nas::test::paths::host, config("search_synthetic")).c_str());
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_THAT(nas::test::read_text(dir_ / "lost.log"), HasSubstr("MASTER_PORT is not set"));
}

TEST_F(DistributedTest, AKilledWorkerLosesNothingAndEvaluatesNothingTwice) {
  // One thread everywhere: the same arithmetic in the coordinator-only and the worker processes.
  // Children of about a second: a worker that has just finished one is busy with the next.
  const std::string search = fmt::format("{} search.schedule=sync search.heartbeat_timeout=2 experiment.threads=1 "
                                         "search.evaluator.epochs=4",
                                         config("search_train_small"));
  ASSERT_EQ(host(fmt::format("run {} --run-dir one", search)).code, 0);

  const pid_t coordinator = nas::test::start_host(dir_, fmt::format("run {} --run-dir two --nproc 2", search), "two.log");
  const fs::path store = dir_ / "two" / "search.sqlite";
  // Once a worker has finished an evaluation, kill it: it is busy with its next one, or about to be.
  std::string victim;
  while (victim.empty() && nas::test::running(coordinator)) {
    if (fs::exists(store))
      for (const auto& e : nas::SearchStore(store).evaluations())
        if (e.status == nas::EvaluationStatus::ok || e.status == nas::EvaluationStatus::failed) victim = e.worker;
    usleep(20000);
  }
  ASSERT_FALSE(victim.empty()) << nas::test::read_text(dir_ / "two.log");
  kill(pid_of(victim), SIGKILL);
  nas::test::wait_until_gone(coordinator);  // the run goes on without it, to the end

  const auto all = rows("two");
  ASSERT_EQ(all.size(), 12u) << nas::test::read_text(dir_ / "two.log");
  for (const auto& e : all) EXPECT_NE(e.status, nas::EvaluationStatus::pending) << "#" << e.index;
  EXPECT_EQ(trajectory("two"), trajectory("one"));  // every architecture once, with the same result
  const std::string log = nas::test::read_text(dir_ / "two" / "log.txt");
  EXPECT_THAT(log, HasSubstr("was killed by signal 9"));
  EXPECT_THAT(log, HasSubstr("goes to another worker"));  // its evaluation was handed over
  EXPECT_EQ(workers("two").size(), 2u);
}

// Every worker killed: the coordinator notices within the heartbeat timeout and, after
// no_worker_timeout without a live worker, stops with exit 1 and says how to continue; the store is
// consistent, and --resume with new workers finishes the search with every proposal once.
TEST_F(DistributedTest, WithEveryWorkerDeadTheCoordinatorStopsAndResumeFinishes) {
  const std::string search = fmt::format("{} search.evaluations=40 search.evaluator.seconds=0.2 "
                                         "search.heartbeat_timeout=2 search.no_worker_timeout=4",
                                         config("search_synthetic"));
  const pid_t coordinator = nas::test::start_host(dir_, fmt::format("run {} --run-dir dead --nproc 2", search), "dead.log");
  const std::set<std::string> seen = busy_workers("dead", coordinator, 2);
  ASSERT_EQ(seen.size(), 2u) << nas::test::read_text(dir_ / "dead.log");
  for (const std::string& worker : seen) kill(pid_of(worker), SIGKILL);
  nas::test::wait_until_gone(coordinator);  // within heartbeat + no_worker timeouts, not forever
  const std::string log = nas::test::read_text(dir_ / "dead.log");
  EXPECT_THAT(log, HasSubstr("no live worker for"));
  EXPECT_THAT(log, HasSubstr("'nas-host run --resume RUN_DIR'"));
  const auto before = rows("dead");
  ASSERT_LT(std::count_if(before.begin(), before.end(), [](const auto& e) { return e.status != nas::EvaluationStatus::pending; }), 40)
      << "stopped before the end";

  auto r = host("run --resume dead --nproc 2");
  ASSERT_EQ(r.code, 0) << r.output;
  const auto after = rows("dead");
  ASSERT_EQ(after.size(), 40u);
  for (std::size_t i = 0; i < after.size(); ++i) {
    EXPECT_EQ(after[i].index, static_cast<std::int64_t>(i));
    EXPECT_NE(after[i].status, nas::EvaluationStatus::pending) << "#" << i;
  }
  for (const auto& e : before)  // what had finished before the kill is kept as it was
    if (e.status == nas::EvaluationStatus::ok) EXPECT_EQ(after[static_cast<std::size_t>(e.index)].reward, e.reward);
}

// The coordinator killed: its workers stop within seconds with one line naming its address.
TEST_F(DistributedTest, WhenTheCoordinatorDiesItsWorkersStopSayingWhere) {
  const std::string search = fmt::format("{} search.evaluations=200 search.evaluator.seconds=0.2", config("search_synthetic"));
  const pid_t coordinator = nas::test::start_host(dir_, fmt::format("run {} --run-dir orphan --nproc 2", search), "orphan.log");
  const std::set<std::string> seen = busy_workers("orphan", coordinator, 2);
  ASSERT_EQ(seen.size(), 2u) << nas::test::read_text(dir_ / "orphan.log");
  kill(coordinator, SIGKILL);
  for (const std::string& worker : seen) nas::test::wait_until_gone(pid_of(worker));
  const std::string log = nas::test::read_text(dir_ / "orphan.log");
  EXPECT_EQ(count_lines_with(log, "lost the coordinator at 127.0.0.1:"), 2u) << log;
  EXPECT_THAT(log, ::testing::Not(HasSubstr("terminate called"))) << "no crash";
  EXPECT_THAT(log, ::testing::Not(HasSubstr("frame #"))) << "no stack trace";
}

TEST_F(DistributedTest, AsynchronousWorkersNeverWaitForAStraggler) {
  auto r = host(fmt::format("run {} --run-dir async --nproc 2 search.schedule=async search.evaluations=30 "
                            "search.evaluator.seconds=0.02 search.evaluator.straggler_rate=0.15 "
                            "search.evaluator.straggler_seconds=2",
                            config("search_synthetic")));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("asynchronous, 3 in flight"));
  const auto all = rows("async");
  ASSERT_EQ(all.size(), 30u);
  std::set<std::int64_t> steps;
  for (const auto& e : all) {
    EXPECT_NE(e.status, nas::EvaluationStatus::pending) << "#" << e.index;
    ASSERT_TRUE(e.observed) << "#" << e.index;
    steps.insert(*e.observed);
  }
  EXPECT_EQ(steps.size(), 30u);  // each result observed on its own as it came
  // While a straggler ran, the other worker went on: it started and finished evaluations meanwhile.
  std::int64_t stragglers = 0, overtaken = 0;
  for (const auto& s : all) {
    if (s.worker.empty() || s.finished_at - s.started_at < 2) continue;
    ++stragglers;
    for (const auto& e : all)
      if (!e.worker.empty() && e.worker != s.worker && e.started_at > s.started_at && e.finished_at < s.finished_at)
        ++overtaken;
  }
  ASSERT_GT(stragglers, 0);
  EXPECT_GT(overtaken, stragglers) << r.output;
}

TEST_F(DistributedTest, AWorkerThatJoinsLateGetsWork) {
  const int port = 20000 + (getpid() + 7919) % 20000;
  auto rank = [&](int r) {
    return fmt::format("cd '{}' && RANK={} WORLD_SIZE=3 LOCAL_RANK={} MASTER_ADDR=127.0.0.1 MASTER_PORT={} "
                       "env -u NAS_PLUGIN_PATH '{}' run {} --run-dir late search.evaluations=40 "
                       "search.evaluator.seconds=0.25 >rank{}.log 2>&1",
                       dir_.string(), r, r, port, nas::test::paths::host, config("search_synthetic"), r);
  };
  const fs::path store = dir_ / "late" / "search.sqlite";
  std::string early = fmt::format("( {} ) & ( {} ) & echo started", rank(0), rank(1));
  ASSERT_EQ(std::system(fmt::format("{} >/dev/null", early).c_str()), 0);
  // Rank 2 starts once the search is under way.
  auto finished = [&] {
    std::size_t n = 0;
    if (fs::exists(store))
      for (const auto& e : nas::SearchStore(store).evaluations()) n += e.status != nas::EvaluationStatus::pending;
    return n;
  };
  for (int i = 0; i < 1500 && finished() < 5; ++i) usleep(20000);
  ASSERT_GE(finished(), 5u) << nas::test::read_text(dir_ / "rank0.log");
  ASSERT_EQ(std::system(rank(2).c_str()), 0) << nas::test::read_text(dir_ / "rank2.log");
  for (int i = 0; i < 1500 && !fs::exists(dir_ / "late" / "search.json"); ++i) usleep(20000);  // rank 0 ends
  ASSERT_TRUE(fs::exists(dir_ / "late" / "search.json")) << nas::test::read_text(dir_ / "rank0.log");
  EXPECT_EQ(workers("late").size(), 2u);  // both workers evaluated, the late one too
  EXPECT_THAT(nas::test::read_text(dir_ / "late" / "worker-2.log"), HasSubstr("evaluations done here"));
  for (const auto& e : rows("late")) EXPECT_NE(e.status, nas::EvaluationStatus::pending) << "#" << e.index;
}

// The paper's pipeline on 3 processes: the workers share the retraining, then every rank trains a
// replica of the winner on its third of each global batch.
TEST_F(DistributedTest, WorkersShareRetrainingAndTrainTheWinnerDataParallel) {
  auto r = host(fmt::format("run {} --run-dir out --nproc 2", config("pipeline_small")));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("retraining 2 architectures at 1@24 for 2 epochs on 2 workers"));
  nlohmann::json retrained = nlohmann::json::parse(std::ifstream(dir_ / "out" / "retrain.json"));
  ASSERT_EQ(retrained.size(), 2u);
  for (const auto& entry : retrained) EXPECT_FALSE(entry["worker"].get<std::string>().empty());

  EXPECT_THAT(r.output, HasSubstr("data-parallel on 3 processes (global batch 16)"));
  EXPECT_THAT(nas::test::read_text(dir_ / "out" / "worker-2.log"), HasSubstr("data-parallel on 3 processes"));
  nlohmann::json result = nlohmann::json::parse(std::ifstream(dir_ / "out" / "result.json"));
  EXPECT_EQ(result["genotype"], "out/best.genotype");
  EXPECT_EQ(result["steps"], 10);  // 80 training examples: 5 global batches of 16 per epoch, as on one process
  EXPECT_TRUE(result.contains("test_top1"));
  EXPECT_TRUE(fs::exists(dir_ / "out" / "weights.pt"));
}

// An image folder of 4 easy classes told apart by a pattern (horizontal or vertical stripes, a
// checkerboard, a bright centre) under a random colour, brightness and noise, so that no class is a
// colour that batch norm's per-batch statistics would blur. Files ordered by class as in an ImageNet
// folder: 60 training and 20 test images per class, JPEG and PNG in turn.
void write_four_classes(const fs::path& root) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> uniform(0, 1);
  std::normal_distribution<double> noise(0, 10);
  for (int c = 0; c < 4; ++c)
    for (int i = 0; i < 80; ++i) {
      const int phase = static_cast<int>(uniform(rng) * 8);
      std::array<double, 3> colour{};
      for (double& channel : colour) channel = 60 + 140 * uniform(rng);
      std::vector<std::uint8_t> pixels;
      for (int y = 0; y < 64; ++y)
        for (int x = 0; x < 64; ++x) {
          const bool on = c == 0   ? (y + phase) / 4 % 2 == 0
                          : c == 1 ? (x + phase) / 4 % 2 == 0
                          : c == 2 ? ((x + phase) / 8 + (y + phase) / 8) % 2 == 0
                                   : std::abs(x - 32) < 12 && std::abs(y - 32) < 12;
          for (double channel : colour)
            pixels.push_back(static_cast<std::uint8_t>(std::clamp((on ? channel : channel / 3) + noise(rng), 0.0, 255.0)));
        }
      nas::test::write_pixels(root / (i < 60 ? "train" : "val") / fmt::format("class{}", c) /
                                  fmt::format("{:02}.{}", i, i % 2 ? "png" : "jpg"),
                              64, 64, std::move(pixels));
    }
}

// The test top-1 of `weights` (a weights.pt) for the network of tests/configs/train_image_folder.yaml,
// evaluated here, in one process.
double test_accuracy_of(const fs::path& weights, const fs::path& images) {
  nas::Logger log(nas::Logger::Level::error);
  const nas::Context context{.log = log, .seed = 7, .registry = &nas::test::plugins()};
  auto space = nas::test::plugins().create<nas::Space>("nasnet", nas::test::params("space/nasnet"), context, {});
  const nas::Params model = nas::test::model(
      "space/nasnet", {{"layout", std::string("imagenet")}, {"N", std::int64_t{1}}, {"F", std::int64_t{96}}});
  auto network = space->build(nas::test::read_text(fs::path(nas::test::paths::source) / "configs/genotypes/nasnet_a.yaml"), model,
                              {4, 3, 64, 64});
  const std::string bytes = nas::test::read_text(weights);
  const c10::Dict<c10::IValue, c10::IValue> state = torch::pickle_load(std::vector<char>(bytes.begin(), bytes.end())).toGenericDict();
  {
    torch::NoGradGuard no_grad;
    for (const auto& p : network->named_parameters()) p.value().copy_(state.at(p.key()).toTensor());
    for (const auto& b : network->named_buffers()) b.value().copy_(state.at(b.key()).toTensor());
  }
  auto test_set = nas::test::dataset(context, "image_folder",
                                     {{"root", images.string()}, {"size", std::int64_t{64}}, {"resize", std::int64_t{64}}},
                                     nas::Split::test);
  nas::LoaderOptions data;
  data.batch_size = 24;
  data.workers = 0;
  data.mean = test_set->info().mean;
  data.std = test_set->info().std;
  std::vector<std::int64_t> all(static_cast<std::size_t>(test_set->size()));
  std::iota(all.begin(), all.end(), 0);
  nas::Trainer trainer(*network, {}, {}, context);
  return trainer.evaluate(nas::Loader(*test_set, all, data, 0)).top1;
}

// 1, 2 and 3 ranks take the same steps (a global batch of batch_size) and report the same accuracy;
// the weights rank 0 saves score, evaluated in one process, what the ranks reported together.
TEST_F(DistributedTest, DataParallelTrainingReportsWhatOneProcessReports) {
  write_four_classes(dir_ / "images");
  std::vector<nlohmann::json> results;
  for (int workers = 0; workers < 3; ++workers) {
    auto r = host(fmt::format("run {} --run-dir ranks{} --nproc {} train.dataset.root='{}'", config("train_image_folder"),
                              workers + 1, workers, (dir_ / "images").string()));
    ASSERT_EQ(r.code, 0) << r.output;
    results.push_back(nlohmann::json::parse(std::ifstream(dir_ / fmt::format("ranks{}", workers + 1) / "result.json")));
  }
  EXPECT_GT(results[0]["test_top1"].get<double>(), 0.9);  // learnable: chance (0.25) would fail here
  for (std::size_t ranks = 2; ranks <= 3; ++ranks) {
    const nlohmann::json& r = results[ranks - 1];
    EXPECT_EQ(r["steps"], results[0]["steps"]) << ranks << " ranks";
    EXPECT_NEAR(r["test_top1"].get<double>(), results[0]["test_top1"].get<double>(), 0.05) << ranks << " ranks";
    EXPECT_NEAR(r["validation_top1"].get<double>(), results[0]["validation_top1"].get<double>(), 0.05) << ranks << " ranks";
    EXPECT_NEAR(test_accuracy_of(dir_ / fmt::format("ranks{}", ranks) / "weights.pt", dir_ / "images"),
                r["test_top1"].get<double>(), 1.5 / 80)  // one image of 80, for the rounding of another batch order
        << ranks << " ranks";
  }
}

// A stage fails in the coordinator (here: it has no genotype to hand its workers): it stops the
// workers it started and exits at once, rather than leaving them to retry the store for minutes.
TEST_F(DistributedTest, WhenAStageFailsTheCoordinatorStopsItsWorkers) {
  write_four_classes(dir_ / "images");
  auto r = host(fmt::format("run {} --run-dir no_genotype --nproc 1 \"train.genotype=''\" train.dataset.root='{}'",
                            config("train_image_folder"), (dir_ / "images").string()));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("error: train: no genotype given"));
  EXPECT_THAT(r.output, HasSubstr("stopping the 1 worker process this run started")) << r.output;
  EXPECT_THAT(r.output, ::testing::Not(HasSubstr("[c10d]"))) << "no worker waited for the store";
}

// Without experiment.threads, a data-parallel stage splits the machine's cores among all the run's
// processes on it, the coordinator's included (it trains too): no more threads than cores.
TEST_F(DistributedTest, DataParallelTrainingSplitsTheCoresAmongTheProcesses) {
  write_four_classes(dir_ / "images");
  auto r = host(fmt::format("run {} --run-dir split --nproc 1 experiment.threads=0 train.epochs=1 train.dataset.root='{}'",
                            config("train_image_folder"), (dir_ / "images").string()));
  ASSERT_EQ(r.code, 0) << r.output;
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency() / 2);
  const std::string split = fmt::format("stage 'train': {} thread{} in each of this machine's 2 processes", threads,
                                        threads == 1 ? "" : "s");
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  if (threads != cores) {  // one core: one thread each, as without the split
    EXPECT_THAT(r.output, HasSubstr(split));
    EXPECT_THAT(nas::test::read_text(dir_ / "split" / "worker-1.log"), HasSubstr(split));
  }
  EXPECT_THAT(r.output, HasSubstr(fmt::format("({} threads, device cpu)", cores)));  // the process's own, outside
}

// A rank that dies in data-parallel training: the other stops with a clear error instead of waiting
// in a collective, both when the worker dies and when the coordinator does; --resume continues from
// rank 0's last checkpoint to the end.
TEST_F(DistributedTest, WhenARankDiesInDataParallelTrainingTheOtherStopsAndResumeContinues) {
  write_four_classes(dir_ / "images");
  const fs::path checkpoint = dir_ / "dp" / "checkpoint.pt";
  auto written = [&] { return fs::exists(checkpoint) ? fs::last_write_time(checkpoint) : fs::file_time_type::min(); };
  auto start = [&](const std::string& args, const std::string& log) {  // until it has trained one more epoch
    const auto before = written();
    const pid_t coordinator = nas::test::start_host(dir_, args, log);
    while (written() == before && nas::test::running(coordinator)) usleep(20000);
    return coordinator;
  };
  const pid_t first = start(fmt::format("run {} --run-dir dp --nproc 1 train.dataset.root='{}' train.epochs=10",
                                        config("train_image_folder"), (dir_ / "images").string()), "dp1.log");
  std::vector<pid_t> workers = nas::test::children(first);
  ASSERT_EQ(workers.size(), 1u) << nas::test::read_text(dir_ / "dp1.log");
  kill(workers[0], SIGKILL);
  nas::test::wait_until_gone(first);
  EXPECT_THAT(nas::test::read_text(dir_ / "dp1.log"), HasSubstr("error: data-parallel training: another rank stopped"));

  const pid_t second = start("run --resume dp --nproc 1", "dp2.log");
  workers = nas::test::children(second);
  ASSERT_EQ(workers.size(), 1u) << nas::test::read_text(dir_ / "dp2.log");
  kill(second, SIGKILL);
  nas::test::wait_until_gone(workers[0]);  // by itself
  const std::string orphan = nas::test::read_text(dir_ / "dp2.log");
  EXPECT_THAT(orphan, HasSubstr("resumed from"));
  EXPECT_THAT(orphan, HasSubstr("error: data-parallel training: another rank stopped"));

  auto r = host("run --resume dp --nproc 1");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("resumed from"));
  const nlohmann::json result = nlohmann::json::parse(std::ifstream(dir_ / "dp" / "result.json"));
  EXPECT_GT(result["test_top1"].get<double>(), 0.9);  // as without the kills (DataParallelTrainingReports...)
}

}  // namespace
