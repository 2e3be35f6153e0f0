// Run directories and running a pipeline in-process.
#include <fstream>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "nas/loader.hpp"
#include "nas/pipeline.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using ::testing::HasSubstr;

namespace {

class PipelineTest : public ::testing::Test {
 protected:
  nas::test::ScratchDir scratch_;
  const fs::path& root_ = scratch_.path();
};

TEST_F(PipelineTest, RunDirectoriesAreNeverReused) {
  nas::Experiment e{"exp", 0, root_ / "runs", 0};
  fs::path a = nas::make_run_dir(e, std::nullopt);
  fs::path b = nas::make_run_dir(e, std::nullopt);
  EXPECT_NE(a, b);
  EXPECT_EQ(a.parent_path(), root_ / "runs" / "exp");
  EXPECT_TRUE(fs::is_directory(a) && fs::is_directory(b));
}

TEST_F(PipelineTest, RequestedRunDirectoryMustBeNewOrEmpty) {
  nas::Experiment e{"exp", 0, root_ / "runs", 0};
  EXPECT_EQ(nas::make_run_dir(e, root_ / "mine"), root_ / "mine");
  std::ofstream(root_ / "mine" / "result.txt") << "precious";
  EXPECT_THROW(nas::make_run_dir(e, root_ / "mine"), nas::UsageError);
  EXPECT_TRUE(fs::exists(root_ / "mine" / "result.txt"));
}

TEST_F(PipelineTest, RunWritesResolvedConfigLogAndOutputs) {
  nas::Registry registry;
  nas::load_plugins(registry, {nas::test::paths::plugins});
  nas::PipelineConfig config = nas::resolve(
      nas::ConfigDocument::load(fs::path(nas::test::paths::configs) / "good.yaml", {"experiment.threads=1"}), registry);
  EXPECT_THAT(nas::plan_text(config), HasSubstr("1. dataset_stats"));
  EXPECT_THAT(nas::plan_text(config), HasSubstr("dataset: dataset/synthetic 0.1.0"));

  nas::Logger log(nas::Logger::Level::warn);
  nas::run_pipeline(config, registry, log, root_);
  std::ifstream saved(root_ / "config.yaml");
  std::string text((std::istreambuf_iterator<char>(saved)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, config.resolved_yaml);
  EXPECT_TRUE(fs::file_size(root_ / "log.txt") > 0);
  nlohmann::json stats = nlohmann::json::parse(std::ifstream(root_ / "dataset_stats.json"));
  EXPECT_EQ(stats["examples"], 10);  // good.yaml sets limit: 10
  EXPECT_EQ(stats["shape"], nlohmann::json({3, 32, 32}));
  int total = 0;
  for (const auto& c : stats["classes"]) total += c["count"].get<int>();
  EXPECT_EQ(total, 10);
  EXPECT_NEAR(stats["mean"][0].get<double>(), 0.5, 0.1);
}

}  // namespace
