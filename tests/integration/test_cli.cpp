// nas-host run as a user would: a child process, its exit code and what it prints.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "nas/abi.h"
#include "support.hpp"

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

using Result = nas::test::HostResult;

class CliTest : public ::testing::Test {
 protected:
  Result host(const std::string& args) { return nas::test::run_host(dir_, args); }

  static std::string quickstart() { return std::string(nas::test::paths::source) + "/configs/quickstart.yaml"; }
  static std::string small() { return std::string(nas::test::paths::configs) + "/good.yaml"; }  // synthetic data, seconds
  nas::test::ScratchDir scratch_;
  const fs::path& dir_ = scratch_.path();
};

TEST_F(CliTest, VersionAndHelp) {
  Result r = host("--version");
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.output, HasSubstr(fmt::format("plugin ABI {}.{}", NAS_ABI_MAJOR, NAS_ABI_MINOR)));
  for (const char* command : {"--help", "run --help", "plugins --help", "plugins list --help", "plugins describe --help"}) {
    Result help = host(command);
    EXPECT_EQ(help.code, 0) << command;
    EXPECT_THAT(help.output, HasSubstr("usage: nas-host")) << command;
  }
}

// nas-host runs with tcmalloc (cmake/NasMalloc.cmake), which prints its statistics at exit when
// MALLOCSTATS is set; glibc's malloc prints nothing. Dropped from the link as unused, glibc's would
// serve the training's allocations again, with a page fault per page of each step's activations.
TEST_F(CliTest, MallocIsTcmalloc) {
#ifndef NAS_TCMALLOC
  GTEST_SKIP() << "built with -DNAS_TCMALLOC=OFF";
#else
  ASSERT_EQ(setenv("MALLOCSTATS", "1", 1), 0);
  Result r = host("--version");
  unsetenv("MALLOCSTATS");
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.output, HasSubstr("MALLOC:"));
  EXPECT_THAT(host("--version").output, Not(HasSubstr("MALLOC:")));  // only when asked
#endif
}

TEST_F(CliTest, BadUsageExitsTwo) {
  EXPECT_EQ(host("").code, 2);
  EXPECT_EQ(host("frobnicate").code, 2);
  EXPECT_EQ(host("run").code, 2);
  EXPECT_EQ(host("run --no-such-flag x.yaml").code, 2);
  EXPECT_EQ(host("plugins sing").code, 2);
  Result r = host("run missing.yaml");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.output, HasSubstr("config file 'missing.yaml' does not exist"));
}

TEST_F(CliTest, PluginsListShowsEveryShippedPlugin) {
  Result r = host("plugins list");
  EXPECT_EQ(r.code, 0);
  for (const char* key : {"op/identity", "op/sep_conv_7x7", "controller/random", "dataset/synthetic", "regularizer/cutout"})
    EXPECT_THAT(r.output, HasSubstr(key));
  EXPECT_THAT(r.output, Not(HasSubstr("failed to load")));
}

TEST_F(CliTest, PluginsListShowsBrokenPluginsWithTheirErrorAsJson) {
  Result r = host(fmt::format("plugins list --json --plugin-path '{}/throws'", nas::test::paths::test_plugins));
  ASSERT_EQ(r.code, 0) << r.output;
  nlohmann::json list = nlohmann::json::parse(r.output);
  ASSERT_EQ(list["broken"].size(), 1u);
  EXPECT_THAT(list["broken"][0]["file"].get<std::string>(), HasSubstr("libnas_test_throws.so"));
  EXPECT_THAT(list["broken"][0]["error"].get<std::string>(), HasSubstr("boom while registering"));
  std::vector<std::string> keys;
  for (const auto& p : list["plugins"]) keys.push_back(p["key"]);
  EXPECT_THAT(keys, ::testing::Contains("dataset/synthetic"));
  EXPECT_EQ(list["plugins"][0].count("version"), 1u);
  EXPECT_EQ(list["plugins"][0].count("file"), 1u);
}

TEST_F(CliTest, NoDefaultPluginsLoadsOnlyTheGivenPath) {
  Result r = host(fmt::format("plugins list --no-default-plugins --plugin-path '{}/duplicate'", nas::test::paths::test_plugins));
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.output, HasSubstr("regularizer/shared_name"));
  EXPECT_THAT(r.output, Not(HasSubstr("dataset/synthetic")));
  EXPECT_THAT(r.output, HasSubstr("is already registered by"));
}

TEST_F(CliTest, DescribeShowsTheSchema) {
  Result r = host("plugins describe dataset/synthetic");
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.output, HasSubstr("signal"));
  EXPECT_THAT(r.output, HasSubstr("a number in [0, 1]"));
  EXPECT_THAT(r.output, HasSubstr("default 1000"));
  Result unknown = host("plugins describe dataset/cifar");
  EXPECT_EQ(unknown.code, 2);
  EXPECT_THAT(unknown.output, HasSubstr("unknown dataset plugin 'cifar'; known: cifar10, cifar100, fashion_mnist, image_folder, synthetic"));
  Result space = host("plugins describe space/nasnet");
  ASSERT_EQ(space.code, 0) << space.output;
  EXPECT_THAT(space.output, HasSubstr("model parameters"));
  EXPECT_THAT(space.output, HasSubstr("stem_multiplier"));
  EXPECT_THAT(space.output, HasSubstr("preset nasnet_a_mobile: F=1056 N=4"));
  EXPECT_THAT(host("plugins describe evaluator/train").output, HasSubstr("capabilities: trains_recipe"));
}

TEST_F(CliTest, DryRunPrintsResolvedConfigAndPlanAndCreatesNothing) {
  Result r = host(fmt::format("run '{}' --dry-run experiment.seed=4", quickstart()));
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("seed: 4"));
  EXPECT_THAT(r.output, HasSubstr("crop_padding: 0"));  // a default, filled in
  EXPECT_THAT(r.output, HasSubstr("1. search"));
  EXPECT_THAT(r.output, HasSubstr("controller: controller/ppo"));
  EXPECT_THAT(r.output, HasSubstr("libnas_evaluator_train.so"));
  EXPECT_THAT(r.output, HasSubstr("libnas_dataset_fashion_mnist.so"));
  EXPECT_THAT(r.output, HasSubstr("space: space/nasnet"));
  EXPECT_FALSE(fs::exists(dir_ / "runs"));
}

TEST_F(CliTest, RunCreatesItsOwnDirectoryAndNeverOverwritesAnother) {
  Result r = host(fmt::format("run '{}' --run-dir out dataset_stats.limit=100 dataset_stats.dataset.size=100", small()));
  ASSERT_EQ(r.code, 0) << r.output;
  for (const char* file : {"config.yaml", "log.txt", "dataset_stats.json"}) EXPECT_TRUE(fs::exists(dir_ / "out" / file)) << file;
  nlohmann::json stats = nlohmann::json::parse(std::ifstream(dir_ / "out" / "dataset_stats.json"));
  EXPECT_EQ(stats["examples"], 100);
  Result again = host(fmt::format("run '{}' --run-dir out", small()));
  EXPECT_EQ(again.code, 2);
  EXPECT_THAT(again.output, HasSubstr("already exists"));

  EXPECT_EQ(host(fmt::format("run '{}' dataset_stats.limit=5", small())).code, 0);
  EXPECT_EQ(host(fmt::format("run '{}' dataset_stats.limit=5", small())).code, 0);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_ / "runs" / "good"), fs::directory_iterator()), 2);
}

TEST_F(CliTest, TrainStageWritesResultWeightsMetricsAndCheckpoint) {
  Result r = host(fmt::format("run '{}/train_small.yaml' --run-dir out", nas::test::paths::configs));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("test accuracy:"));
  for (const char* file : {"result.json", "weights.pt", "metrics.jsonl", "checkpoint.pt", "config.yaml", "log.txt"})
    EXPECT_TRUE(fs::exists(dir_ / "out" / file)) << file;
  nlohmann::json result = nlohmann::json::parse(std::ifstream(dir_ / "out" / "result.json"));
  EXPECT_FALSE(result["diverged"].get<bool>());
  EXPECT_GE(result["test_top1"].get<double>(), 0.0);
  EXPECT_EQ(result["steps"], 2 * 5);  // 2 epochs of 160 / 32 steps

}

TEST_F(CliTest, AKilledTrainRunResumesToTheSameWeights) {
  const std::string config = fmt::format("'{}/train_small.yaml' train.epochs=6", nas::test::paths::configs);
  ASSERT_EQ(host(fmt::format("run {} --run-dir whole", config)).code, 0);

  // Start the same run, kill -9 it once its first checkpoint exists, and resume it.
  const pid_t pid = nas::test::start_host(dir_, fmt::format("run {} --run-dir killed", config), "killed.log");
  for (int i = 0; i < 100000 && !fs::exists(dir_ / "killed" / "checkpoint.pt") && nas::test::running(pid); ++i) usleep(2000);
  kill(pid, SIGKILL);
  nas::test::wait_until_gone(pid);
  EXPECT_FALSE(fs::exists(dir_ / "killed" / "result.json")) << "killed before the end (if not, resuming is trivial)";

  Result resumed = host("run --resume killed");
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_THAT(resumed.output, HasSubstr("resuming run 'train_small'"));
  EXPECT_THAT(resumed.output, HasSubstr("resumed from"));
  nlohmann::json whole = nlohmann::json::parse(std::ifstream(dir_ / "whole" / "result.json"));
  nlohmann::json again = nlohmann::json::parse(std::ifstream(dir_ / "killed" / "result.json"));
  EXPECT_EQ(again["steps"], whole["steps"]);
  EXPECT_EQ(again["test_top1"], whole["test_top1"]);
  EXPECT_EQ(nas::test::read_text(dir_ / "killed" / "weights.pt"), nas::test::read_text(dir_ / "whole" / "weights.pt"))
      << "the same weights, byte for byte";

  EXPECT_EQ(host("run --resume no_such_run").code, 2);
  EXPECT_EQ(host(fmt::format("run {} --resume killed", config)).code, 2);
}

TEST_F(CliTest, BadConfigExitsTwoNamingThePosition) {
  std::string file = std::string(nas::test::paths::configs) + "/bad/wrong_type.yaml";
  Result r = host(fmt::format("run '{}'", file));
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.output, HasSubstr(file + ":2:9: experiment.seed: expected an integer >= 0, got 'abc'"));
  EXPECT_FALSE(fs::exists(dir_ / "runs"));
}

TEST_F(CliTest, RuntimeFailureExitsOne) {
  fs::path blocker = dir_ / "file";
  std::ofstream(blocker) << "x";
  Result r = host(fmt::format("run '{}' experiment.output_dir='{}'", small(), blocker.string()));
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("cannot create"));
}

TEST_F(CliTest, InspectReportsCountsShapesAndDrawsTheCells) {
  std::string genotype = std::string(nas::test::paths::source) + "/configs/genotypes/nasnet_a.yaml";
  Result r = host(fmt::format("inspect '{}' --model layout=cifar --model N=6 --model F=768 --input 32 --classes 10 "
                              "--json --dot cells.dot", genotype));
  ASSERT_EQ(r.code, 0) << r.output;
  nlohmann::json report = nlohmann::json::parse(r.output);
  EXPECT_NEAR(report["params"].get<double>(), 3.3e6, 0.05e6);  // the paper's NASNet-A 6@768: 3.3M
  EXPECT_GT(report["mult_adds"].get<double>(), 0);
  EXPECT_EQ(report["stages"].back()["shape"], nlohmann::json({1, 10}));
  EXPECT_EQ(report["stages"][3]["shape"], nlohmann::json({1, 768, 8, 8}));
  std::ifstream dot(dir_ / "cells.dot");
  std::string text((std::istreambuf_iterator<char>(dot)), std::istreambuf_iterator<char>());
  EXPECT_THAT(text, HasSubstr("digraph"));
  EXPECT_THAT(text, HasSubstr("sep_conv_7x7"));
  if (std::system("command -v dot >/dev/null 2>&1") == 0) EXPECT_TRUE(fs::exists(dir_ / "cells.svg"));

  Result bad = host(fmt::format("inspect '{}/tests/genotypes/bad/yaml_error.yaml'", nas::test::paths::source));
  EXPECT_EQ(bad.code, 2);
  EXPECT_THAT(bad.output, HasSubstr("yaml_error.yaml:4:10: YAML syntax error"));
}

TEST_F(CliTest, GenotypeConvertsToDartsAndBack) {
  std::string genotype = std::string(nas::test::paths::source) + "/configs/genotypes/nasnet_a.yaml";
  Result darts = host(fmt::format("genotype '{}' --to darts", genotype));
  ASSERT_EQ(darts.code, 0) << darts.output;
  EXPECT_THAT(darts.output, HasSubstr("Genotype(normal=[('sep_conv_5x5', 1), ('sep_conv_3x3', 0)"));
  std::ofstream(dir_ / "a.darts") << darts.output;
  Result back = host("genotype a.darts --from darts");
  ASSERT_EQ(back.code, 0) << back.output;
  std::ofstream(dir_ / "back.yaml") << back.output;
  Result original = host(fmt::format("genotype '{}'", genotype)), round_trip = host("genotype back.yaml");
  EXPECT_EQ(original.code, 0);
  EXPECT_EQ(round_trip.output, original.output);  // same hash, same canonical form
  EXPECT_THAT(original.output, HasSubstr("# hash "));
}

// A run started with --plugin-path resumes without it: config.yaml records the folder.
TEST_F(CliTest, TheCommandLinesPluginPathIsRecordedForResume) {
  const fs::path plugin_dir = fs::path(nas::test::paths::test_plugins) / "example_op";
  Result r = host(fmt::format("run '{}' --run-dir out --plugin-path '{}'", small(), plugin_dir.string()));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_THAT(nas::test::read_text(dir_ / "out" / "config.yaml"),
              HasSubstr(fs::absolute(plugin_dir).lexically_normal().string()));
  Result resumed = host("run --resume out -v");
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_THAT(resumed.output, HasSubstr("plugin search path, in order: " + fs::absolute(plugin_dir).lexically_normal().string()));
}

TEST_F(CliTest, LogLevelShowsDebugLinesAndRejectsUnknownLevels) {
  Result quiet = host(fmt::format("run '{}' --dry-run", small()));
  ASSERT_EQ(quiet.code, 0) << quiet.output;
  EXPECT_THAT(quiet.output, Not(HasSubstr("plugin search path")));
  Result verbose = host(fmt::format("run '{}' --dry-run --log-level debug", small()));
  ASSERT_EQ(verbose.code, 0) << verbose.output;
  EXPECT_THAT(verbose.output, HasSubstr("plugin search path"));
  Result bad = host(fmt::format("run '{}' --dry-run --log-level loud", small()));
  EXPECT_EQ(bad.code, 2);
  EXPECT_THAT(bad.output, HasSubstr("--log-level loud: expected debug, info, warn or error"));
}

// A genotype file's `# space:` line: inspect reads a cell of a third-party op with the space it was
// searched in (2 blocks, that op), without --space-param.
TEST_F(CliTest, InspectUsesTheSpaceAGenotypeFileRecords) {
  const std::string cell = "  blocks:\n    - [0, scaled_identity, 1, sep_conv_3x3, add]\n    - [2, scaled_identity, 0, sep_conv_3x3, add]\n";
  const std::string genotype = "space: nasnet\nnormal:\n" + cell + "reduction:\n" + cell;
  std::ofstream(dir_ / "bare.genotype") << genotype;
  std::ofstream(dir_ / "recorded.genotype")
      << "# space: {plugin: nasnet, blocks: 2, ops: [scaled_identity, sep_conv_3x3], combines: [add, concat]}\n" << genotype;
  const std::string plugins = fmt::format("--plugin-path '{}/example_op'", nas::test::paths::test_plugins);
  Result bare = host(fmt::format("inspect bare.genotype {} --json", plugins));
  EXPECT_EQ(bare.code, 2) << "the default space has 5 blocks and no scaled_identity: " << bare.output;
  Result recorded = host(fmt::format("inspect recorded.genotype {} --json --model N=1 --model F=48", plugins));
  ASSERT_EQ(recorded.code, 0) << recorded.output;
  EXPECT_EQ(nlohmann::json::parse(recorded.output)["model"], "1@48");
}

TEST_F(CliTest, InspectBuildsThePapersModelsByName) {
  const std::string genotype = std::string(nas::test::paths::source) + "/configs/genotypes/nasnet_a.yaml";
  Result mobile = host(fmt::format("inspect '{}' --preset nasnet_a_mobile --input 224 --classes 1000 --json", genotype));
  ASSERT_EQ(mobile.code, 0) << mobile.output;
  nlohmann::json report = nlohmann::json::parse(mobile.output);
  EXPECT_EQ(report["model"], "4@1056");
  EXPECT_NEAR(report["mult_adds"].get<double>(), 564e6, 0.01 * 564e6);  // the paper's 564M (stem multiplier 1)
  Result overridden = host(fmt::format("inspect '{}' --preset nasnet_a_mobile --model N=2 --json", genotype));
  ASSERT_EQ(overridden.code, 0) << overridden.output;
  EXPECT_EQ(nlohmann::json::parse(overridden.output)["model"], "2@1056");
  Result unknown = host(fmt::format("inspect '{}' --preset nasnet_b", genotype));
  EXPECT_EQ(unknown.code, 2);
  EXPECT_THAT(unknown.output, HasSubstr("preset: expected one of: none, nasnet_a_cifar, nasnet_a_large, nasnet_a_mobile"));
}

}  // namespace
