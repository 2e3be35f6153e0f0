// nas-host ablate as a user runs it: expansion and validation, the folder and its outputs, the same
// runs whatever the parallelism, kill -9 and --resume, and an ablation of a training stage.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <fstream>
#include <map>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "nas/store.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

// A search in a second: evolution over NASNet cells on the synthetic evaluator, one thread per run
// (so that any --jobs gives the same runs), 20 evaluations in sync rounds of 5.
std::string ablation(const std::string& arms_and_more, const std::string& more_settings = "") {
  return fmt::format("base: {}/search_synthetic.yaml\n"
                     "set: {{experiment.threads: 1, search.evaluations: 20, search.batch: 5{}}}\n{}",
                     nas::test::paths::configs, more_settings, arms_and_more);
}

nlohmann::json read_json(const fs::path& file) { return nlohmann::json::parse(nas::test::read_text(file)); }

std::size_t count(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (std::size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + part.size())) ++n;
  return n;
}

const std::string kTwoArms =
    "arms:\n"
    "  - {name: random, search.controller: {plugin: random}}\n"
    "  - {name: evolution, search.controller: {plugin: evolution, population: 5, sample: 3}}\n";

class AblationTest : public ::testing::Test {
 protected:
  nas::test::HostResult host(const std::string& args) { return nas::test::run_host(dir_, args); }
  void write(const std::string& name, const std::string& text) { std::ofstream(dir_ / name) << text; }

  // The one ablation folder under ablations/NAME.
  fs::path folder(const std::string& name) {
    std::vector<fs::path> found;
    for (const auto& entry : fs::directory_iterator(dir_ / "ablations" / name)) found.push_back(entry.path());
    EXPECT_EQ(found.size(), 1u);
    return found.empty() ? fs::path() : found.front();
  }

  // Per run: every evaluation's (index, hash, status, reward), in order.
  using Rows = std::vector<std::tuple<std::int64_t, std::string, std::string, std::optional<double>>>;
  static std::map<std::string, Rows> runs(const fs::path& ablation) {
    std::map<std::string, Rows> out;
    const nlohmann::json plan = read_json(ablation / "plan.json");
    for (const auto& r : plan["runs"]) {
      Rows rows;
      for (const auto& e : nas::SearchStore(ablation / r["id"].get<std::string>() / "search.sqlite").evaluations())
        rows.emplace_back(e.index, e.hash, std::string(nas::to_string(e.status)), e.reward);
      out[r["id"]] = rows;
    }
    return out;
  }

  nas::test::ScratchDir scratch_;
  const fs::path& dir_ = scratch_.path();
};

TEST_F(AblationTest, DryRunListsArmsTimesGridTimesSeedsAndRunsNothing) {
  write("a.yaml", ablation(kTwoArms + "grid:\n  search.evaluator.noise: [0.01, 0.05]\nseeds: [3, 5]\n"
                                      "checkpoints: {evaluations: [10, 50]}\n"));
  auto r = host("ablate a.yaml --dry-run");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("checkpoint '50 evaluations' is beyond the search budget of random/"));
  EXPECT_THAT(r.output, HasSubstr("2 arms x 2 grid points x 2 seeds = 8 runs"));
  for (const char* id : {"random/search.evaluator.noise=0.01/seed-3", "random/search.evaluator.noise=0.05/seed-5",
                         "evolution/search.evaluator.noise=0.01/seed-5", "evolution/search.evaluator.noise=0.05/seed-3"})
    EXPECT_THAT(r.output, HasSubstr(id));
  EXPECT_THAT(r.output, HasSubstr("baseline: random"));
  EXPECT_FALSE(fs::exists(dir_ / "ablations"));

  // The base inline, as a map; seeds as a count.
  write("inline.yaml", "base:\n"
                       "  search:\n"
                       "    evaluations: 10\n"
                       "    space: {plugin: nasnet}\n"
                       "    controller: {plugin: random}\n"
                       "    evaluator: {plugin: synthetic}\n"
                       "arms:\n  - {name: b2, search.space.blocks: 2}\n  - {name: b3, search.space.blocks: 3}\n"
                       "seeds: 2\n");
  r = host("ablate inline.yaml --dry-run");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("2 arms x 1 grid points x 2 seeds = 4 runs"));
  EXPECT_THAT(r.output, HasSubstr("b3/seed-1"));
  r = host("ablate inline.yaml --dry-run search.space.blockz=2");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("command-line override 'search.space.blockz=2': search.space.blockz: unknown key"));
}

TEST_F(AblationTest, MistakesNameTheAblationFilesLineAndKey) {
  // Line 3: a misspelt parameter in an arm; line 4: the same arm name; an axis over an unknown key.
  write("bad.yaml", ablation("arms:\n"
                             "  - {name: random, search.controller: {plugin: random}}\n"
                             "  - {name: evo, search.controller: {plugin: evolution, populaton: 5}}\n"
                             "  - {name: evo, search.controller: {plugin: random}}\n"
                             "grid:\n  search.evaluatr.noise: [0.1]\n"));
  auto r = host("ablate bad.yaml --dry-run");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("bad.yaml:6:12: arms.2.name: arm 'evo' is named twice"));
  r = host("ablate bad.yaml --dry-run arms.2.name=evo2");  // the file's own keys take overrides too
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("bad.yaml:5:56: search.controller.populaton: unknown key"));
  EXPECT_THAT(r.output, HasSubstr("(did you mean 'population'?)"));
  EXPECT_THAT(r.output, HasSubstr("bad.yaml:8:3: search.evaluatr: unknown key"));

  write("empty.yaml", ablation(kTwoArms + "seeds: []\nmetrics: [accuracy]\n"));
  r = host("ablate empty.yaml");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("empty.yaml:6:8: seeds: expected a count of seeds >= 1 or a non-empty list"));
  EXPECT_THAT(r.output, HasSubstr("empty.yaml:7:11: metrics: unknown metric; expected one of: best_reward"));
  write("seeded.yaml", ablation("arms:\n  - {name: a, experiment.seed: 4}\n"));
  r = host("ablate seeded.yaml");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("set 'seeds', not experiment.seed"));
  EXPECT_FALSE(fs::exists(dir_ / "ablations")) << "nothing runs before every run is valid";
}

TEST_F(AblationTest, EveryRunIsAnOrdinaryRunAndTheArmsAreCompared) {
  write("a.yaml", ablation(kTwoArms + "seeds: 3\ncheckpoints: {evaluations: [10, 20], seconds: [3600]}\n"));
  auto r = host("ablate a.yaml --jobs 2");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("[ablate] 6/6 runs done"));
  EXPECT_THAT(r.output, HasSubstr("| random (baseline) |"));
  const fs::path ablation = folder("a");
  EXPECT_THAT(r.output, HasSubstr(ablation.filename().string()));
  for (const std::string arm : {"random", "evolution"})
    for (int seed = 0; seed < 3; ++seed) {
      const fs::path run = ablation / arm / fmt::format("seed-{}", seed);
      EXPECT_TRUE(fs::exists(run / "finished.json")) << run;
      const std::string config = nas::test::read_text(run / "config.yaml");
      EXPECT_THAT(config, HasSubstr(fmt::format("seed: {}", seed)));
      EXPECT_THAT(config, HasSubstr("plugin: " + arm));
      auto resumed = host(fmt::format("run --resume '{}'", run.string()));  // an ordinary run folder
      EXPECT_EQ(resumed.code, 0) << resumed.output;
    }

  const std::string csv = nas::test::read_text(ablation / "ablation.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 1 + 6 * 20) << "a header and one row per evaluation";
  EXPECT_THAT(csv, HasSubstr("run,arm,seed,evaluation,wall_time,reward,best_so_far,final_score,test_accuracy\n"));

  const nlohmann::json json = read_json(ablation / "ablation.json");
  std::vector<std::string> cells;
  for (const auto& cell : json["results"]) {
    cells.push_back(cell["metric"].get<std::string>() + " @ " + cell["checkpoint"].get<std::string>());
    ASSERT_EQ(cell["arms"].size(), 2u);
    for (const auto& arm : cell["arms"]) {
      EXPECT_EQ(arm["n"], 3);
      EXPECT_LE(arm["ci"][0].get<double>(), arm["mean"].get<double>());
      EXPECT_GE(arm["ci"][1].get<double>(), arm["mean"].get<double>());
    }
    ASSERT_EQ(cell["comparisons"].size(), 1u);
    EXPECT_EQ(cell["comparisons"][0]["arm"], "evolution");
    EXPECT_EQ(cell["comparisons"][0]["test"], "wilcoxon") << "the same seeds, the same data: paired";
  }
  EXPECT_THAT(cells, ::testing::ElementsAre("best_reward @ 10 evaluations", "best_reward @ 20 evaluations",
                                            "best_reward @ 3600 s", "final_score @ 10 evaluations",
                                            "final_score @ 20 evaluations", "final_score @ 3600 s"));
  EXPECT_EQ(json["results"][2]["arms"][1]["values"], json["results"][1]["arms"][1]["values"])
      << "an hour covers every evaluation of these runs";
  EXPECT_THAT(nas::test::read_text(ablation / "ablation.md"), HasSubstr("| 20 evaluations | evolution | 3 |"));
}

TEST_F(AblationTest, TheSameRunsWithAnyNumberOfJobsOrProcesses) {
  write("a.yaml", ablation(kTwoArms + "seeds: 2\n"));
  ASSERT_EQ(host("ablate a.yaml --jobs 1 output_dir=one").code, 0);
  ASSERT_EQ(host("ablate a.yaml --jobs 2 output_dir=two").code, 0);
  auto r = host("ablate a.yaml --jobs 1 --nproc 1 output_dir=shared");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("2 processes (nas-host) share the runs"));
  std::vector<fs::path> folders;
  for (const char* out : {"one", "two", "shared"})
    for (const auto& entry : fs::directory_iterator(dir_ / out / "a")) folders.push_back(entry.path());
  ASSERT_EQ(folders.size(), 3u);
  const auto one = runs(folders[0]);
  ASSERT_EQ(one.size(), 4u);
  for (const auto& [id, rows] : one) EXPECT_EQ(rows.size(), 20u) << id;
  EXPECT_EQ(one, runs(folders[1])) << "--jobs 2";
  EXPECT_EQ(one, runs(folders[2])) << "--nproc 1";
  for (const auto& [id, rows] : one)  // each run started once, by one process
    EXPECT_EQ(count(nas::test::read_text(folders[2] / id / "log.txt"), "run 'search_synthetic'"), 1) << id;
}

TEST_F(AblationTest, KilledAndResumedItFinishesWithoutRepeatingOrLosingARun) {
  // Runs of about a second each, one at a time: a kill lands between or inside runs.
  write("a.yaml", ablation(kTwoArms + "seeds: 3\n", ", search.evaluator.seconds: 0.03"));
  const pid_t pid = nas::test::start_host(dir_, "ablate a.yaml --jobs 1", "ablate.log");
  auto finished_runs = [&] {
    std::vector<fs::path> done;
    if (fs::exists(dir_ / "ablations"))
      for (const auto& e : fs::recursive_directory_iterator(dir_ / "ablations"))
        if (e.path().filename() == "finished.json") done.push_back(e.path());
    return done;
  };
  while (finished_runs().size() < 2 && nas::test::running(pid)) usleep(20000);
  usleep(300000);  // into the next run
  kill(pid, SIGKILL);
  nas::test::wait_until_gone(pid);
  const std::vector<fs::path> before = finished_runs();
  ASSERT_GE(before.size(), 2u);
  ASSERT_LT(before.size(), 6u) << "killed before the end (if not, resuming is trivial)";
  std::map<fs::path, std::string> markers;
  for (const fs::path& marker : before) markers[marker] = nas::test::read_text(marker);

  const fs::path ablation = folder("a");
  auto r = host(fmt::format("ablate --resume '{}'", ablation.string()));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr(fmt::format("6 runs, {} to do", 6 - before.size())));
  EXPECT_EQ(finished_runs().size(), 6u);
  for (const auto& [marker, text] : markers) EXPECT_EQ(nas::test::read_text(marker), text) << marker << " ran again";
  for (const auto& [id, rows] : runs(ablation)) {
    ASSERT_EQ(rows.size(), 20u) << id;
    for (std::size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(std::get<0>(rows[i]), static_cast<std::int64_t>(i)) << id;
    EXPECT_EQ(count(nas::test::read_text(ablation / id / "log.txt"), "run 'search_synthetic'"), 1)
        << id << ": started afresh once, resumed after that";
  }
  EXPECT_THAT(nas::test::read_text(ablation / "ablation.md"), HasSubstr("6 of 6 runs finished"));
}

// Two axes, not in alphabetical order: after --resume (the plan read back) the CSV's columns still
// match their values; and one coordinator per folder.
TEST_F(AblationTest, ResumeKeepsTheAxesOrderAndOneCoordinatorWorksOnAFolder) {
  write("g.yaml", ablation("arms:\n  - {name: random, search.controller: {plugin: random}}\n"
                           "grid:\n  search.evaluator.noise: [0.05]\n  search.evaluator.fail_rate: [0.2]\nseeds: 1\n"));
  ASSERT_EQ(host("ablate g.yaml").code, 0);
  const fs::path ablation = folder("g");
  fs::remove(ablation / "ablation.csv");
  auto r = host(fmt::format("ablate --resume '{}'", ablation.string()));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("1 runs, 0 to do"));
  const std::string csv = nas::test::read_text(ablation / "ablation.csv");
  EXPECT_THAT(csv, HasSubstr("run,arm,search.evaluator.noise,search.evaluator.fail_rate,seed,"));
  EXPECT_THAT(csv, HasSubstr(",random,0.05,0.2,0,"));

  const int lock = ::open((ablation / "ablation.lock").c_str(), O_RDWR);
  ASSERT_GE(lock, 0);
  ASSERT_EQ(flock(lock, LOCK_EX | LOCK_NB), 0);  // as a running coordinator holds it
  r = host(fmt::format("ablate --resume '{}'", ablation.string()));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("another nas-host ablate is working on"));
  ::close(lock);
}

// Arms over something else than the controller: a training stage with and without ScheduledDropPath,
// compared by test accuracy.
TEST_F(AblationTest, ATrainingAblationComparesTestAccuracy) {
  write("t.yaml", fmt::format("base: {}/train_small.yaml\n"
                              "set: {{experiment.threads: 1, train.epochs: 1}}\n"
                              "arms:\n"
                              "  - {{name: no_drop_path, train.regularizers: []}}\n"
                              "  - {{name: drop_path, train.regularizers: [{{plugin: scheduled_drop_path, keep_prob: 0.7}}]}}\n"
                              "seeds: 2\n",
                              nas::test::paths::configs));
  auto r = host("ablate t.yaml");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("## test_accuracy"));
  const fs::path ablation = folder("t");
  EXPECT_THAT(nas::test::read_text(ablation / "drop_path" / "seed-1" / "config.yaml"), HasSubstr("keep_prob: 0.7"));
  const nlohmann::json json = read_json(ablation / "ablation.json");
  ASSERT_EQ(json["results"].size(), 1u);
  EXPECT_EQ(json["results"][0]["metric"], "test_accuracy");
  for (const auto& arm : json["results"][0]["arms"]) {
    EXPECT_EQ(arm["n"], 2);
    for (const auto& v : arm["values"]) EXPECT_TRUE(v.is_number());
  }
  const std::string csv = nas::test::read_text(ablation / "ablation.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 1 + 4) << "one row per run: no search";
}

}  // namespace
