// space/nasnet: genotypes, canonical hashes, the DARTS format, cells and the N@F network builder.
#include <fstream>
#include <random>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "nas/cost.hpp"
#include "nas/loader.hpp"
#include "nas/log.hpp"
#include "nas/space.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using ::testing::HasSubstr;

namespace {

class NasnetSpaceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { registry_ = &nas::test::plugins(); }
  void SetUp() override { torch::manual_seed(0); }

  // The nasnet space with `changes` to its default parameters.
  std::unique_ptr<nas::Space> space(std::map<std::string, nas::Value, std::less<>> changes = {}) {
    return registry_->create<nas::Space>("nasnet", nas::test::params("space/nasnet", std::move(changes)), context_, {});
  }

  // 1@F in the cifar layout, with `changes`.
  static nas::Params tiny(std::int64_t F = 48, std::map<std::string, nas::Value, std::less<>> changes = {}) {
    changes.emplace("N", std::int64_t{1});
    changes.emplace("F", F);
    return nas::test::model("space/nasnet", std::move(changes));
  }
  static constexpr nas::DataShape kThreeClasses{3, 3, 32, 32};

  static const nas::Registry* registry_;
  nas::Logger log_{nas::Logger::Level::error};
  nas::Context context_{.log = log_, .registry = registry_};
  const std::string nasnet_a_ = nas::test::read_text(fs::path(nas::test::paths::source) / "configs/genotypes/nasnet_a.yaml");
};
const nas::Registry* NasnetSpaceTest::registry_ = nullptr;

TEST_F(NasnetSpaceTest, DecisionsAreFiveABlockWithGrowingInputChoices) {
  std::vector<nas::Decision> d = space()->decisions();
  ASSERT_EQ(d.size(), 2u * 5 * 5);
  EXPECT_EQ(d[0].name, "normal.block0.input_a");
  EXPECT_EQ(d[0].choices, 2);
  EXPECT_EQ(d[5 * 4 + 1].choices, 6);   // normal block 4 chooses among 6 states
  EXPECT_EQ(d[2].choices, 13);          // the 13 ops
  EXPECT_EQ(d[4].choices, 2);           // add, concat
  EXPECT_EQ(d[25].name, "reduction.block0.input_a");
}

TEST_F(NasnetSpaceTest, NasnetAReproducesThePublishedCounts) {
  auto network = space()->build(nasnet_a_, nas::test::model("space/nasnet", {}, "nasnet_a_large"), {1001, 3, 331, 331});
  nas::ModelCost cost = nas::measure_cost(*network, {3, 331, 331});
  EXPECT_NEAR(cost.params, 88.9e6, 0.01 * 88.9e6);
  EXPECT_NEAR(cost.mult_adds, 23.8e9, 0.01 * 23.8e9);
}

// The presets build the paper's models: NASNet-A Mobile's 564M multiply-adds need stem multiplier 1.
TEST_F(NasnetSpaceTest, PresetsAreThePapersModels) {
  auto mobile = space()->build(nasnet_a_, nas::test::model("space/nasnet", {}, "nasnet_a_mobile"), {1000, 3, 224, 224});
  nas::ModelCost cost = nas::measure_cost(*mobile, {3, 224, 224});
  EXPECT_NEAR(cost.params, 5.3e6, 0.02 * 5.3e6);
  EXPECT_NEAR(cost.mult_adds, 564e6, 0.01 * 564e6);
  auto cifar = space()->build(nasnet_a_, nas::test::model("space/nasnet", {}, "nasnet_a_cifar"), {10, 3, 32, 32});
  EXPECT_NEAR(nas::measure_cost(*cifar, {3, 32, 32}).params, 3.3e6, 0.05e6);  // NASNet-A 6@768: 3.3M
  EXPECT_GT(cifar->aux_head_parameters(), 0) << "the paper's models train with the auxiliary head";
}

TEST_F(NasnetSpaceTest, CifarLayoutShapesAndAuxHead) {
  auto network = space()->build(nasnet_a_, tiny(96, {{"aux_head", true}}), kThreeClasses);  // base 96 / 24 = 4 filters
  auto shapes = network->stage_shapes(torch::zeros({2, 3, 32, 32}));
  ASSERT_EQ(shapes.size(), 5u);
  EXPECT_EQ(shapes[0].second, (std::vector<std::int64_t>{2, 12, 32, 32}));  // stem: 3 x base
  EXPECT_EQ(shapes[1].second, (std::vector<std::int64_t>{2, 24, 32, 32}));  // 6 states x 4
  EXPECT_EQ(shapes[2].second, (std::vector<std::int64_t>{2, 48, 16, 16}));
  EXPECT_EQ(shapes[3].second, (std::vector<std::int64_t>{2, 96, 8, 8}));    // F
  ASSERT_NE(network->drop_path_cells(), nullptr);
  EXPECT_EQ(network->drop_path_cells()->num_cells(), 5);
  network->train();
  nas::NetworkOutput out = network->forward(torch::randn({2, 3, 32, 32}));
  EXPECT_EQ(out.logits.sizes(), (std::vector<std::int64_t>{2, 3}));
  ASSERT_TRUE(out.aux_logits.defined());
  EXPECT_EQ(out.aux_logits.sizes(), (std::vector<std::int64_t>{2, 3}));
  EXPECT_GT(network->aux_head_parameters(), 0);
  network->eval();
  EXPECT_FALSE(network->forward(torch::randn({2, 3, 32, 32})).aux_logits.defined());
}

TEST_F(NasnetSpaceTest, GrayscaleInputAndChannelsLast) {
  auto network = space()->build(nasnet_a_, tiny(), {3, 1, 16, 16});
  network->eval();
  torch::Tensor x = torch::randn({2, 1, 16, 16});
  torch::Tensor expected = network->forward(x).logits;
  for (auto& p : network->parameters())
    if (p.dim() == 4) p.set_data(p.data().contiguous(torch::MemoryFormat::ChannelsLast));
  torch::Tensor got = network->forward(x.contiguous(torch::MemoryFormat::ChannelsLast)).logits;
  EXPECT_TRUE(torch::allclose(got, expected, 1e-4, 1e-5));
}

TEST_F(NasnetSpaceTest, DropPathDropsInTrainingOnly) {
  auto network = space()->build(nasnet_a_, tiny(), kThreeClasses);
  nas::DropPathCells& cells = *network->drop_path_cells();
  torch::Tensor x = torch::randn({64, 3, 8, 8});
  auto logits = [&](bool training, double keep) {
    network->train(training);
    cells.set_drop_path_keep(std::vector<double>(cells.num_cells(), keep));
    torch::manual_seed(1);  // the same draws either way
    return network->forward(x).logits;
  };
  EXPECT_TRUE(torch::equal(logits(false, 0.5), logits(false, 1.0))) << "off at evaluation";
  EXPECT_FALSE(torch::allclose(logits(true, 0.5), logits(true, 1.0))) << "on in training";
  EXPECT_TRUE(torch::equal(logits(true, 1.0), logits(true, 1.0)));
  EXPECT_THROW(cells.set_drop_path_keep({0.5}), nas::Error);
}

// Every pattern of used and unused states in a 2-block cell, with add and with concat.
TEST_F(NasnetSpaceTest, EveryInputPatternAndCombineBuildsWithLooseEndsConcatenated) {
  auto s = space({{"blocks", std::int64_t{2}}, {"ops", std::vector<std::string>{"sep_conv_3x3", "identity"}}});
  int built = 0;
  for (int a0 = 0; a0 < 2; ++a0)
    for (int b0 = 0; b0 < 2; ++b0)
      for (int a1 = 0; a1 < 3; ++a1)
        for (int b1 = 0; b1 < 3; ++b1)
          for (int combine = 0; combine < 2; ++combine) {
            std::vector<std::int64_t> cell{a0, b0, 0, 1, combine, a1, b1, 1, 0, combine};
            std::vector<std::int64_t> decisions = cell;
            decisions.insert(decisions.end(), cell.begin(), cell.end());
            std::string genotype = s->decode(decisions);
            bool block0_used = a1 == 2 || b1 == 2;
            std::int64_t outputs = block0_used ? 1 : 2;  // loose ends: block 1, and block 0 unless used
            SCOPED_TRACE(genotype);
            auto network = s->build(genotype, tiny(4 * outputs * 2), kThreeClasses);
            auto shapes = network->stage_shapes(torch::randn({2, 3, 8, 8}));
            EXPECT_EQ(shapes[1].second[1], outputs * 2);  // normal cells: loose ends x base filters
            network->train();
            network->forward(torch::randn({2, 3, 8, 8})).logits.sum().backward();
            ++built;
          }
  EXPECT_EQ(built, 72);
}

// 200 seeded random genotypes build, run forward and backward, and round-trip through YAML; 200 more
// from the add-only space (DARTS has no concat blocks) also round-trip through the DARTS format.
TEST_F(NasnetSpaceTest, RandomGenotypesBuildTrainAndRoundTrip) {
  auto full = space();
  auto add_only = space({{"combines", std::vector<std::string>{"add"}}});
  std::mt19937_64 rng(2024);
  for (int i = 0; i < 400; ++i) {
    nas::Space& s = i < 200 ? *full : *add_only;
    std::string genotype = s.decode(nas::sample_decisions(s.decisions(), rng));
    SCOPED_TRACE(genotype);
    std::string hash = nas::architecture_hash(s, genotype);
    EXPECT_EQ(nas::architecture_hash(s, s.canonical(genotype, "random")), hash);
    if (&s == add_only.get()) {
      std::string darts = s.export_as(genotype, "darts");
      EXPECT_EQ(nas::architecture_hash(s, s.import_from(darts, "darts", "random")), hash) << darts;
      continue;
    }
    auto network = s.build(genotype, tiny(120), kThreeClasses);
    network->train();
    nas::NetworkOutput out = network->forward(torch::randn({2, 3, 8, 8}));
    ASSERT_EQ(out.logits.sizes(), (std::vector<std::int64_t>{2, 3}));
    out.logits.square().sum().backward();
    // A genotype may leave a whole cell unread by the next ones (e.g. a normal cell that reads only
    // h_{i-1}), so not every parameter gets a gradient; the input side and the classifier always do.
    for (const char* name : {"stem.0.weight", "classifier.weight"})
      ASSERT_TRUE(network->named_parameters()[name].grad().defined()) << name;
    for (const auto& p : network->parameters())
      if (p.grad().defined()) ASSERT_TRUE(torch::isfinite(p.grad()).all().item<bool>());
  }
}

TEST_F(NasnetSpaceTest, HashIgnoresOperandOrderAndImplicitConcat) {
  auto s = space();
  std::string swapped = nasnet_a_;
  auto replace = [](std::string text, const std::string& from, const std::string& to) {
    return text.replace(text.find(from), from.size(), to);
  };
  swapped = replace(swapped, "[0, sep_conv_5x5, 1, sep_conv_3x3, add]", "[1, sep_conv_3x3, 0, sep_conv_5x5, add]");
  EXPECT_EQ(nas::architecture_hash(*s, swapped), nas::architecture_hash(*s, nasnet_a_));
  // Leaving out concat means the loose ends; saying them explicitly is the same architecture.
  std::string implicit = replace(nasnet_a_, "  concat: [3, 4, 5, 6]\n", "");
  std::string explicit_loose = replace(nasnet_a_, "  concat: [3, 4, 5, 6]\n", "  concat: [4, 5, 6]\n");
  EXPECT_EQ(nas::architecture_hash(*s, implicit), nas::architecture_hash(*s, explicit_loose));
  EXPECT_NE(nas::architecture_hash(*s, implicit), nas::architecture_hash(*s, nasnet_a_));
  std::string other_op = replace(nasnet_a_, "[0, sep_conv_5x5, 1, sep_conv_3x3, add]", "[0, sep_conv_5x5, 1, sep_conv_5x5, add]");
  EXPECT_NE(nas::architecture_hash(*s, other_op), nas::architecture_hash(*s, nasnet_a_));
}

TEST_F(NasnetSpaceTest, DifferentArchitecturesHashDifferently) {
  auto s = space();
  std::mt19937_64 rng(7);
  std::set<std::string> canonical, hashes;
  for (int i = 0; i < 300; ++i) {
    std::string genotype = s->decode(nas::sample_decisions(s->decisions(), rng));
    canonical.insert(s->canonical(genotype, "sample"));
    hashes.insert(nas::architecture_hash(*s, genotype));
  }
  EXPECT_EQ(hashes.size(), canonical.size());
  EXPECT_GT(canonical.size(), 295u);
}

TEST_F(NasnetSpaceTest, MutationChangesExactlyOneDecision) {
  auto s = space();
  std::mt19937_64 rng(3);
  std::vector<nas::Decision> d = s->decisions();
  for (int i = 0; i < 50; ++i) {
    std::vector<std::int64_t> parent = nas::sample_decisions(d, rng);
    std::vector<std::int64_t> child = nas::mutate_decisions(d, parent, rng);
    int changed = 0;
    for (std::size_t k = 0; k < d.size(); ++k) {
      changed += parent[k] != child[k];
      EXPECT_LT(child[k], d[k].choices);
    }
    EXPECT_EQ(changed, 1);
  }
}

TEST_F(NasnetSpaceTest, NasnetAInTheDartsFormat) {
  auto s = space();
  std::string darts = s->export_as(nasnet_a_, "darts");
  // DARTS numbers h_{i-1} as 0 and h_i as 1, and calls identity skip_connect.
  EXPECT_THAT(darts, HasSubstr("normal=[('sep_conv_5x5', 1), ('sep_conv_3x3', 0), ('sep_conv_5x5', 0), ('sep_conv_3x3', 0), "
                               "('avg_pool_3x3', 1), ('skip_connect', 0),"));
  EXPECT_THAT(darts, HasSubstr("normal_concat=[0, 2, 3, 4, 5, 6]"));
  EXPECT_THAT(darts, HasSubstr("reduce_concat=[3, 4, 5, 6]"));
  EXPECT_EQ(s->canonical(s->import_from(darts, "darts", "x"), "x"), s->canonical(nasnet_a_, "x"));
  // Found by fuzz_genotype_darts: a number too long for std::stoll escaped as std::out_of_range.
  std::string huge = darts;
  huge.replace(huge.find("('sep_conv_5x5', 1)"), 19, "('sep_conv_5x5', 99999999999999999999)");
  try {
    s->import_from(huge, "darts", "huge.darts");
    ADD_FAILURE() << "accepted " << huge;
  } catch (const nas::Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("huge.darts: normal: state 99999999999999999999 out of range"));
  }
  // The text DARTS's own genotypes.py has, with range() concat.
  std::string from_darts_repo =
      "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
      "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=range(2, 6), "
      "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
      "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=range(2, 6))";
  auto four = space({{"blocks", std::int64_t{4}}});
  std::string yaml = four->import_from(from_darts_repo, "darts", "darts_v2");
  EXPECT_THAT(yaml, HasSubstr("- [1, sep_conv_3x3, 0, sep_conv_3x3, add]"));
  EXPECT_THAT(yaml, HasSubstr("concat: [2, 3, 4, 5]"));
  EXPECT_THROW(s->export_as(s->decode(std::vector<std::int64_t>(50, 1)), "darts"), nas::UsageError);  // concat blocks
}

TEST_F(NasnetSpaceTest, AThirdPartyOpIsUsedByName) {
  auto s = space({{"blocks", std::int64_t{2}}, {"ops", std::vector<std::string>{"sep_conv_3x3", "scaled_identity"}}});
  std::string genotype = s->decode(std::vector<std::int64_t>(20, 1));  // every op: scaled_identity
  EXPECT_THAT(genotype, HasSubstr("scaled_identity"));
  auto network = s->build(genotype, tiny(), kThreeClasses);
  bool found = false;
  for (const auto& p : network->named_parameters()) found |= p.key().find("scale") != std::string::npos;
  EXPECT_TRUE(found) << "the plugin's op, with its own parameter, is in the network";
  network->forward(torch::randn({2, 3, 8, 8})).logits.sum().backward();
  EXPECT_THROW(space({{"ops", std::vector<std::string>{"no_such_op"}}}), nas::UsageError);
}

TEST_F(NasnetSpaceTest, ModelParametersThatLeaveALayerWithoutChannelsAreUsageErrorsSayingTheSmallest) {
  // NASNet-A concatenates 6 states: 24 for the cifar layout, 96 for imagenet's stem cells.
  const nas::DataShape imagenet{10, 3, 64, 64};
  try {
    space()->build(nasnet_a_, tiny(64, {{"layout", std::string("imagenet")}}), imagenet);
    FAIL() << "built";
  } catch (const nas::UsageError& e) {
    EXPECT_THAT(e.what(), HasSubstr("F = 64 is too small: the imagenet layout needs at least 96"));
  }
  EXPECT_NO_THROW(space()->build(nasnet_a_, tiny(96, {{"layout", std::string("imagenet")}}), imagenet));
  try {
    space()->build(nasnet_a_, tiny(48, {{"stem_multiplier", 0.1}}), kThreeClasses);  // base 2: 0.2 filters
    FAIL() << "built";
  } catch (const nas::UsageError& e) {
    EXPECT_THAT(e.what(), HasSubstr("stem_multiplier = 0.1 leaves the stem without filters (2 x 0.1); it needs at least 0.5"));
  }
}

struct BadGenotype {
  std::string file;
  std::string message;
  friend void PrintTo(const BadGenotype& b, std::ostream* os) { *os << b.file; }
};

class BadGenotypeTest : public NasnetSpaceTest, public ::testing::WithParamInterface<BadGenotype> {};

TEST_P(BadGenotypeTest, NamesTheFileAndTheEntry) {
  fs::path file = fs::path(nas::test::paths::source) / "tests/genotypes/bad" / GetParam().file;
  auto s = space({{"blocks", std::int64_t{2}}});
  try {
    s->canonical(nas::test::read_text(file), file.string());
    FAIL() << "accepted";
  } catch (const nas::UsageError& e) {
    EXPECT_EQ(std::string(e.what()), file.string() + GetParam().message);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Genotype, BadGenotypeTest,
    ::testing::Values(
        BadGenotype{"unknown_op.yaml", ":4: normal.blocks[1]: unknown op 'sep_conv_9x9'; the space's ops: identity, "
                                       "conv_1x3_3x1, conv_1x7_7x1, dil_conv_3x3, avg_pool_3x3, max_pool_3x3, max_pool_5x5, "
                                       "max_pool_7x7, conv_1x1, conv_3x3, sep_conv_3x3, sep_conv_5x5, sep_conv_7x7"},
        BadGenotype{"index_out_of_range.yaml", ":7: reduction.blocks[0]: input 2 out of range; block 0 chooses among states 0..1"},
        BadGenotype{"wrong_block_count.yaml", ": normal: 1 blocks, the space has 2"},
        BadGenotype{"yaml_error.yaml", ":4:10: YAML syntax error: end of sequence flow not found"},
        BadGenotype{"bad_block.yaml", ":4: normal.blocks[1]: expected [input, op, input, op, combine], e.g. "
                                      "[0, sep_conv_3x3, 1, identity, add]"},
        BadGenotype{"bad_concat.yaml", ":5: normal.concat: state 9 out of range 0..3"},
        BadGenotype{"unknown_combine.yaml", ":4: normal.blocks[1]: unknown combine 'multiply'; expected one of: add, concat"},
        // Found by fuzz_genotype_nasnet: a structure where a name belongs escaped as a YAML exception.
        BadGenotype{"op_not_a_name.yaml", ":4: normal.blocks[1]: expected an op (a name), got a structure"},
        BadGenotype{"wrong_space.yaml", ":1: space: this is a 'nasbench201' genotype, expected 'nasnet'"}),
    [](const auto& info) { return info.param.file.substr(0, info.param.file.find('.')); });

}  // namespace
