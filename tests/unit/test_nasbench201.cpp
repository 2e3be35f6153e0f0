// The NAS-Bench-201 space (cell strings, decisions, the network) and the tabular evaluator.
#include <fstream>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "nas/evaluator.hpp"
#include "nas/log.hpp"
#include "nas/space.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using ::testing::HasSubstr;

namespace {

const std::string kCell = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|";
const fs::path kTables = fs::path(nas::test::paths::source) / "../shared/data/nasbench201";

class Nb201Test : public ::testing::Test {
 protected:
  nas::Logger log_{nas::Logger::Level::error};
  nas::Context context_{.log = log_, .registry = &nas::test::plugins()};
  std::shared_ptr<const nas::Space> space_ =
      nas::test::plugins().create<nas::Space>("nasbench201", nas::test::params("space/nasbench201"), context_, {});

  std::unique_ptr<nas::Evaluator> tabular(std::map<std::string, nas::Value, std::less<>> changes) {
    return nas::test::plugins().create<nas::Evaluator>("tabular", nas::test::params("evaluator/tabular", std::move(changes)),
                                                       context_, {space_, nullptr, {}});
  }
  nas::Candidate candidate(const std::string& genotype) { return {0, {}, genotype, nas::architecture_hash(*space_, genotype)}; }
};

TEST_F(Nb201Test, SixEdgesOfFiveOpsInCellStringOrder) {
  auto decisions = space_->decisions();
  ASSERT_EQ(decisions.size(), 6u);
  for (const auto& d : decisions) EXPECT_EQ(d.choices, 5);
  EXPECT_EQ(decisions[2].name, "edge2<-1");
  EXPECT_EQ(space_->decode({3, 3, 4, 1, 3, 1}), kCell);
  EXPECT_THROW(space_->decode({3, 3, 4, 1, 3, 5}), nas::UsageError);
}

TEST_F(Nb201Test, CanonicalFormIgnoresLayoutCommentsAndEntryOrder) {
  std::string messy = "# a comment\n |nor_conv_3x3~0| +\n|avg_pool_3x3~1|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|\n";
  EXPECT_EQ(space_->canonical(messy, "cell.txt"), kCell);
  EXPECT_EQ(nas::architecture_hash(*space_, messy), nas::architecture_hash(*space_, kCell));
  EXPECT_NE(nas::architecture_hash(*space_, space_->decode({0, 0, 0, 0, 0, 0})), nas::architecture_hash(*space_, kCell));
}

TEST_F(Nb201Test, BadCellStringsNameTheFileAndWhatIsWrong) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"|conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|", "entry 'conv_9x9~0' of node 1"},
      {"|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "input must be 0..0"},
      {"|none~0|+|none~0|none~0|+|none~0|none~1|none~2|", "node 2 has input 0 twice"},
      {"|none~0|+|none~0|none~1|", "2 nodes"},
      {"|none~0|+|none~0|+|none~0|none~1|none~2|", "an edge is missing"},
  };
  for (const auto& [text, what] : cases) {
    try {
      space_->canonical(text, "cells/bad.txt");
      ADD_FAILURE() << "accepted " << text;
    } catch (const nas::UsageError& e) {
      EXPECT_THAT(e.what(), HasSubstr("cells/bad.txt")) << text;
      EXPECT_THAT(e.what(), HasSubstr(what)) << text;
    }
  }
}

TEST_F(Nb201Test, EveryArchitectureOfTheSpaceIsARowOfTheBenchmark) {
  if (!fs::exists(kTables / "nb201_12epoch.csv")) GTEST_SKIP() << "no NAS-Bench-201 tables at " << kTables;
  auto evaluator = tabular({{"table", (kTables / "nb201_12epoch.csv").string()},
                            {"final_table", (kTables / "nb201_200epoch_test.csv").string()}});
  std::set<std::string> seen;
  std::vector<std::int64_t> d(6, 0);
  for (int n = 0; n < 15625; ++n) {
    for (int e = 0, rest = n; e < 6; ++e, rest /= 5) d[static_cast<std::size_t>(e)] = rest % 5;
    std::string cell = space_->decode(d);
    seen.insert(cell);
    nas::Evaluation result = evaluator->evaluate(candidate(cell));
    ASSERT_TRUE(result.reward) << cell << ": " << result.failure;
    ASSERT_TRUE(result.final_score) << cell;
    ASSERT_GE(*result.reward, 0.0);
    ASSERT_LE(*result.final_score, 0.94374) << cell;  // the benchmark's best cell: 94.37%
  }
  EXPECT_EQ(seen.size(), 15625u);
  nas::Evaluation known = evaluator->evaluate(candidate(kCell));  // the table's row 1
  EXPECT_NEAR(*known.reward, 0.82834, 1e-5);
  EXPECT_NEAR(*known.final_score, 0.9366, 1e-5);
}

TEST_F(Nb201Test, BuildsTheBenchmarksNetwork) {
  const nas::DataShape cifar10{10, 3, 32, 32};
  const std::string all_conv = space_->decode({3, 3, 3, 3, 3, 3});
  auto network = space_->build(all_conv, nas::test::model("space/nasbench201"), cifar10);  // defaults: N 5, C 16
  std::int64_t params = 0;
  for (const auto& p : network->parameters()) params += p.numel();
  EXPECT_EQ(params, 1531546);  // NAS-Bench-201 lists 1.53M parameters for this (its largest) cell
  EXPECT_EQ(network->drop_path_cells()->num_cells(), 15);

  const nas::Params one_cell = nas::test::model("space/nasbench201", {{"N", std::int64_t{1}}, {"F", std::int64_t{16}}});
  auto small = space_->build(kCell, one_cell, cifar10);
  auto shapes = small->stage_shapes(torch::zeros({2, 3, 32, 32}));
  ASSERT_EQ(shapes.size(), 5u);
  EXPECT_EQ(shapes[3].second, (std::vector<std::int64_t>{2, 16, 8, 8}));
  EXPECT_EQ(shapes[4].second, (std::vector<std::int64_t>{2, 10}));
  EXPECT_THROW(small->drop_path_cells()->set_drop_path_keep({1.0}), nas::Error);
  small->drop_path_cells()->set_drop_path_keep({0.5, 0.5, 0.5});
  EXPECT_EQ(small->forward(torch::zeros({2, 3, 32, 32})).logits.sizes(), (c10::IntArrayRef{2, 10}));
  // A cell whose output node has no inputs still builds and runs (its output is zero).
  EXPECT_EQ(space_->build(space_->decode({0, 0, 0, 0, 0, 0}), one_cell, cifar10)->forward(torch::zeros({1, 3, 32, 32})).logits.size(1), 10);
  EXPECT_THROW(space_->build(kCell, nas::test::model("space/nasbench201", {{"F", std::int64_t{18}}}), cifar10),
               nas::UsageError);
}

TEST_F(Nb201Test, TabularEvaluatorLooksUpAndReportsBadTablesByLine) {
  nas::test::ScratchDir dir;
  const fs::path table = dir.path() / "table.csv";
  std::ofstream(table) << "arch,cellstr,cifar10-val\n0," << kCell << ",81.5\n";
  auto evaluator = tabular({{"table", table.string()}});
  nas::Evaluation hit = evaluator->evaluate(candidate("# from top/1.genotype\n" + kCell + "\n"));
  EXPECT_DOUBLE_EQ(*hit.reward, 0.815);
  EXPECT_FALSE(hit.final_score);
  nas::Evaluation miss = evaluator->evaluate(candidate(space_->decode({0, 0, 0, 0, 0, 0})));
  EXPECT_FALSE(miss.reward);
  EXPECT_THAT(miss.failure, HasSubstr("not in the table"));

  const std::vector<std::pair<std::string, std::string>> bad{
      {"arch,cellstr,cifar10-val\n0,x,1\n1,y\n", "table.csv:3: 2 fields, expected 3"},
      {"arch,cellstr,cifar10-val\n0,x,high\n", "table.csv:2: column 'cifar10-val' is 'high', expected a number"},
      {"arch,cell,cifar10-val\n0,x,1\n", "table.csv:1: no column 'cellstr'; columns: arch, cell, cifar10-val"},
  };
  for (const auto& [text, what] : bad) {
    std::ofstream(table) << text;
    try {
      tabular({{"table", table.string()}});
      ADD_FAILURE() << "accepted " << text;
    } catch (const nas::UsageError& e) {
      EXPECT_THAT(e.what(), HasSubstr(what));
    }
  }
}

// Multi-fidelity: one column per fidelity, named by fidelity_column's pattern; a fidelity with no
// column stops the search (the scheduler's rungs do not fit the table), a full evaluation reads `reward`.
TEST_F(Nb201Test, TabularEvaluatorReadsAColumnPerFidelity) {
  nas::test::ScratchDir dir;
  const fs::path table = dir.path() / "table.csv";
  std::ofstream(table) << "arch,cellstr,val@1,val@4,cifar10-val,val@x\n0," << kCell << ",30,60,81.5,7\n";
  auto evaluator = tabular({{"table", table.string()}, {"fidelity_column", std::string("val@{}")}});
  auto at = [&](std::int64_t fidelity) {
    nas::Candidate c = candidate(kCell);
    c.fidelity = fidelity;
    return *evaluator->evaluate(c).reward;
  };
  EXPECT_DOUBLE_EQ(at(1), 0.30);
  EXPECT_DOUBLE_EQ(at(4), 0.60);
  EXPECT_DOUBLE_EQ(at(0), 0.815);
  try {
    at(2);
    ADD_FAILURE() << "fidelity 2 has no column";
  } catch (const nas::UsageError& e) {
    EXPECT_THAT(e.what(), HasSubstr("has no column for fidelity 2 (fidelity_column gives: 1, 4)"));
  }
  EXPECT_THROW(tabular({{"table", table.string()}, {"fidelity_column", std::string("epoch{}")}}), nas::UsageError);
  EXPECT_THROW(tabular({{"table", table.string()}, {"fidelity_column", std::string("val@")}}), nas::UsageError);
}

}  // namespace
