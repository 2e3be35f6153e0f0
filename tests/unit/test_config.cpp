// The pipeline config: every error kind with its exact position, overrides, the resolved form.
#include <unistd.h>

#include <fstream>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "nas/config.hpp"
#include "nas/loader.hpp"
#include "nas/trainer.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using ::testing::HasSubstr;

namespace {

const nas::Registry& registry() { return nas::test::plugins(); }

fs::path config(const std::string& name) { return fs::path(nas::test::paths::configs) / name; }

nas::PipelineConfig resolve(const fs::path& file, const std::vector<std::string>& overrides = {}) {
  return nas::resolve(nas::ConfigDocument::load(file, overrides), registry());
}

// The diagnostics, one string each, of a config that must fail.
std::vector<std::string> errors(const fs::path& file, const std::vector<std::string>& overrides = {}) {
  try {
    resolve(file, overrides);
  } catch (const nas::ConfigError& e) {
    std::vector<std::string> out;
    for (const nas::Diagnostic& d : e.diagnostics()) out.push_back(d.str());
    return out;
  }
  ADD_FAILURE() << file << " was accepted";
  return {};
}

struct BadConfig {
  std::string file;
  std::string diagnostic;  // exactly, after "<path to file>:"
  friend void PrintTo(const BadConfig& c, std::ostream* os) { *os << c.file; }
};

class BadConfigTest : public ::testing::TestWithParam<BadConfig> {};

TEST_P(BadConfigTest, FailsWithPositionKeyAndExpectedForm) {
  fs::path file = config("bad/" + GetParam().file);
  std::vector<std::string> found = errors(file);
  ASSERT_EQ(found.size(), 1u) << ::testing::PrintToString(found);
  EXPECT_EQ(found[0], file.string() + ":" + GetParam().diagnostic);
}

INSTANTIATE_TEST_SUITE_P(
    Config, BadConfigTest,
    ::testing::Values(
        BadConfig{"unknown_key.yaml",
                  "3:3: experiment.nmae: unknown key; expected one of: name, seed, output_dir, threads, "
                  "processes_per_gpu (did you mean 'name'?)"},
        BadConfig{"wrong_type.yaml", "2:9: experiment.seed: expected an integer >= 0, got 'abc'"},
        BadConfig{"out_of_range.yaml", "4:11: dataset_stats.dataset.size: expected an integer in [1, 1000000000], got '0'"},
        BadConfig{"unknown_plugin.yaml", "3:13: dataset_stats.dataset.plugin: unknown dataset plugin 'cifar'; known: cifar10, cifar100, fashion_mnist, image_folder, synthetic"},
        BadConfig{"missing_required.yaml",
                  "2:3: dataset_stats.dataset: missing required key; expected a map {plugin: NAME, ...parameters}"},
        BadConfig{"bad_choice.yaml", "2:10: dataset_stats.split: expected one of: train, test, got 'validation'"},
        BadConfig{"unknown_section.yaml",
                  "1:1: serach: unknown key; expected one of: experiment, plugin_paths, pipeline, dataset_stats, search, select, retrain, final, train "
                  "(did you mean 'search'?)"},
        BadConfig{"unknown_stage.yaml", "1:27: pipeline: unknown stage 'transfer'; stages: dataset_stats, search, select, retrain, final, train"},
        BadConfig{"not_a_map.yaml",
                  "2:12: dataset_stats.dataset: expected a map {plugin: NAME, ...parameters} naming a dataset plugin, "
                  "got 'synthetic'"}),
    [](const auto& info) { return info.param.file.substr(0, info.param.file.find('.')); });

TEST(Config, YamlSyntaxErrorNamesFileLineAndColumn) {
  fs::path file = config("bad/syntax_error.yaml");
  std::vector<std::string> found = errors(file);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_THAT(found[0], HasSubstr(file.string() + ":3:"));
  EXPECT_THAT(found[0], HasSubstr("YAML syntax error"));
}

TEST(Config, ReportsEveryProblemAtOnce) {
  fs::path file = config("bad/several.yaml");
  EXPECT_THAT(errors(file), ::testing::ElementsAre(
                                file.string() + ":2:9: experiment.seed: expected an integer >= 0, got '-1'",
                                file.string() + ":3:12: experiment.threads: expected an integer >= 0, got 'many'",
                                file.string() + ":7:13: dataset_stats.dataset.signal: expected a number in [0, 1], got '2'"));
}

TEST(Config, MissingFileIsAUsageError) {
  EXPECT_THROW(nas::ConfigDocument::load(config("nope.yaml"), {}), nas::UsageError);
}

TEST(Config, DefaultsAreFilledIn) {
  nas::PipelineConfig c = resolve(config("good.yaml"));
  EXPECT_EQ(c.experiment.name, "good");
  EXPECT_EQ(c.experiment.seed, 3);
  EXPECT_EQ(c.experiment.output_dir, "runs");
  ASSERT_EQ(c.stages.size(), 1u);
  EXPECT_EQ(c.stages[0].def->name, "dataset_stats");
  EXPECT_EQ(c.stages[0].params.get<std::string>("split"), "train");
  const nas::PluginChoice* dataset = c.stages[0].one("dataset");
  ASSERT_NE(dataset, nullptr);
  EXPECT_EQ(dataset->entry->key, "dataset/synthetic");
  EXPECT_EQ(dataset->params.get<std::int64_t>("size"), 50);
  EXPECT_EQ(dataset->params.get<std::int64_t>("width"), 32);
}

TEST(Config, OverridesAreTypedBySchema) {
  nas::PipelineConfig c = resolve(config("good.yaml"), {"experiment.seed=7", "dataset_stats.dataset.signal=0.25",
                                                        "dataset_stats.split=test", "experiment.name=other"});
  EXPECT_EQ(c.experiment.seed, 7);
  EXPECT_EQ(c.experiment.name, "other");
  EXPECT_DOUBLE_EQ(c.stages[0].one("dataset")->params.get<double>("signal"), 0.25);
  EXPECT_EQ(c.stages[0].params.get<std::string>("split"), "test");
}

TEST(Config, OverridesCanAddKeysAndSections) {
  nas::PipelineConfig c = resolve(config("good.yaml"), {"experiment.threads=2", "plugin_paths=[]"});
  EXPECT_EQ(c.experiment.threads, 2);
}

TEST(Config, BadOverridesNameTheOverride) {
  EXPECT_THAT(errors(config("good.yaml"), {"dataset_stats.dataset.size=abc"}),
              ::testing::ElementsAre("command-line override 'dataset_stats.dataset.size=abc': dataset_stats.dataset.size: "
                                     "expected an integer in [1, 1000000000], got 'abc'"));
  EXPECT_THAT(errors(config("good.yaml"), {"dataset_stats.dataset.sizee=5"}),
              ::testing::ElementsAre(HasSubstr("command-line override 'dataset_stats.dataset.sizee=5': "
                                               "dataset_stats.dataset.sizee: unknown key")));
  EXPECT_THAT(errors(config("good.yaml"), {"no-equals-sign"}),
              ::testing::ElementsAre("command-line override 'no-equals-sign': expected KEY.PATH=VALUE"));
  EXPECT_THAT(errors(config("good.yaml"), {"experiment.name.first=x"}),
              ::testing::ElementsAre(HasSubstr("'experiment.name' is a value, not a section")));
}

TEST(Config, ResolvedYamlResolvesToItself) {
  nas::PipelineConfig c = resolve(config("good.yaml"), {"experiment.seed=11"});
  fs::path copy = fs::temp_directory_path() / fmt::format("nas_resolved_{}.yaml", getpid());
  std::ofstream(copy) << c.resolved_yaml;
  nas::PipelineConfig again = resolve(copy);
  fs::remove(copy);
  EXPECT_EQ(again.experiment.seed, 11);
  // Same content but for the comment naming the source file.
  auto body = [](const std::string& yaml) { return yaml.substr(yaml.find('\n')); };
  EXPECT_EQ(body(again.resolved_yaml), body(c.resolved_yaml));
}

TEST(Config, PluginPathsAreRelativeToTheConfigFile) {
  fs::path dir = fs::temp_directory_path() / fmt::format("nas_cfg_{}", getpid());
  fs::create_directories(dir / "my_plugins");
  std::ofstream(dir / "c.yaml") << "plugin_paths: [my_plugins]\n";
  std::vector<fs::path> paths = nas::ConfigDocument::load(dir / "c.yaml", {}).plugin_paths();
  fs::remove_all(dir);
  ASSERT_EQ(paths.size(), 1u);
  EXPECT_EQ(paths[0], dir / "my_plugins");
}

// A stage that trains takes its space's model parameters; a preset fills those the section leaves out.
TEST(Config, TrainingSectionsTakeTheSpacesModelParametersAndPresets) {
  fs::path dir = fs::temp_directory_path() / fmt::format("nas_model_{}", getpid());
  fs::create_directories(dir);
  std::ofstream(dir / "c.yaml") << "train:\n  genotype: g.yaml\n  preset: nasnet_a_cifar\n  N: 2\n"
                                   "  space: {plugin: nasnet}\n  dataset: {plugin: synthetic}\n";
  const nas::PipelineConfig c = resolve(dir / "c.yaml");
  const nas::Params& p = c.stages.at(0).params;
  EXPECT_EQ(p.get<std::int64_t>("N"), 2) << "given beside the preset: overrides it";
  EXPECT_EQ(p.get<std::int64_t>("F"), 768) << "from the preset";
  EXPECT_TRUE(p.get<bool>("aux_head"));
  EXPECT_EQ(p.get<std::int64_t>("epochs"), nas::TrainOptions{}.epochs) << "the recipe's default";
  EXPECT_THAT(c.resolved_yaml, HasSubstr("F: 768"));

  // The same keys are unknown to a space whose models lack them (NAS-Bench-201 has no layout).
  std::ofstream(dir / "nb201.yaml") << "train:\n  layout: cifar\n  space: {plugin: nasbench201}\n  dataset: {plugin: synthetic}\n";
  EXPECT_THAT(errors(dir / "nb201.yaml"), ::testing::ElementsAre(HasSubstr("train.layout: unknown key")));
  fs::remove_all(dir);
}

// A plugin's own presets: ppo's nasnet_paper sets what the paper leaves to the plain reading.
TEST(Config, APluginsPresetFillsTheKeysTheSectionLeavesOut) {
  fs::path dir = fs::temp_directory_path() / fmt::format("nas_preset_{}", getpid());
  fs::create_directories(dir);
  std::ofstream(dir / "c.yaml") << "search:\n  space: {plugin: nasnet}\n  evaluator: {plugin: synthetic}\n"
                                   "  controller: {plugin: ppo, preset: nasnet_paper, minibatches: 2}\n";
  const nas::PipelineConfig c = resolve(dir / "c.yaml");
  const nas::Params& p = c.stages.at(0).slots.at("controller").at(0).params;
  EXPECT_EQ(p.get<std::int64_t>("epochs"), 1) << "from the preset";
  EXPECT_FALSE(p.get<bool>("normalize_advantages")) << "from the preset";
  EXPECT_EQ(p.get<std::int64_t>("minibatches"), 2) << "given beside the preset: overrides it";
  std::ofstream(dir / "bad.yaml") << "search:\n  space: {plugin: nasnet}\n  evaluator: {plugin: synthetic}\n"
                                     "  controller: {plugin: ppo, preset: nasnet_papr}\n";
  EXPECT_THAT(errors(dir / "bad.yaml"), ::testing::ElementsAre(HasSubstr("search.controller.preset: expected one of")));
  fs::remove_all(dir);
}

}  // namespace
