// Parameter specs: expected-form texts, typed access; options structs that are their own schema.
#include <gtest/gtest.h>

#include "nas/error.hpp"
#include "nas/options.hpp"
#include "nas/recipe.hpp"
#include "nas/schema.hpp"

namespace {

TEST(Schema, ExpectedFormsReadAsEnglish) {
  EXPECT_EQ(nas::param::integer("n", 1).range(1, 100).expected(), "an integer in [1, 100]");
  EXPECT_EQ(nas::param::number("p", 0.5).at_least(0).expected(), "a number >= 0");
  EXPECT_EQ(nas::param::choice("s", {"train", "test"}).expected(), "one of: train, test");
  EXPECT_EQ(nas::param::integer_list("xs").range(0, 9).expected(), "a list of integers, each in [0, 9]");
  EXPECT_EQ(nas::param::boolean("b").expected(), "a boolean (true or false)");
}

TEST(Schema, DefaultsMakeParametersOptional) {
  EXPECT_FALSE(nas::param::integer("n", 3).required());
  EXPECT_TRUE(nas::param::integer("n").required());
}

TEST(Schema, ValuesPrintAsYaml) {
  EXPECT_EQ(nas::to_string(nas::Value(std::vector<std::int64_t>{1, 2})), "[1, 2]");
  EXPECT_EQ(nas::to_string(nas::Value(0.25)), "0.25");
  EXPECT_EQ(nas::to_string(nas::Value(true)), "true");
}

TEST(Schema, ParamsGiveTypedValuesAndRejectMisuse) {
  nas::Params p({{"epochs", std::int64_t{20}}, {"lr", 0.1}});
  EXPECT_EQ(p.get<std::int64_t>("epochs"), 20);
  EXPECT_DOUBLE_EQ(p.get<double>("lr"), 0.1);
  EXPECT_THROW(p.get<double>("epochs"), nas::Error);
  EXPECT_THROW(p.get<std::int64_t>("missing"), nas::Error);
}

struct Example {
  std::int64_t steps = 7;
  double rate = 0.5;
  std::string mode = "fast";
  std::vector<std::string> names{"a", "b"};
  std::string file;

  static auto fields() {
    return std::tuple{nas::field("steps", &Example::steps).range(1, 10).help("how many"),
                      nas::field("rate", &Example::rate), nas::field("mode", &Example::mode).one_of({"fast", "slow"}),
                      nas::field("names", &Example::names), nas::field("file", &Example::file).path().required()};
  }
};

TEST(Options, TheStructIsTheSchemaAndItsDefaults) {
  const nas::Schema schema = nas::schema_of<Example>();
  ASSERT_EQ(schema.size(), 5u);
  EXPECT_EQ(schema[0].name, "steps");
  EXPECT_EQ(schema[0].type, nas::ParamType::integer);
  EXPECT_EQ(std::get<std::int64_t>(*schema[0].default_value), 7);
  EXPECT_EQ(schema[0].expected(), "an integer in [1, 10]");
  EXPECT_EQ(schema[0].doc, "how many");
  EXPECT_EQ(schema[1].type, nas::ParamType::number);
  EXPECT_EQ(schema[2].type, nas::ParamType::choice);
  EXPECT_EQ(schema[2].choices, (std::vector<std::string>{"fast", "slow"}));
  EXPECT_EQ(schema[3].type, nas::ParamType::string_list);
  EXPECT_EQ(schema[4].type, nas::ParamType::path);
  EXPECT_TRUE(schema[4].required());

  const Example read = nas::options_from<Example>(nas::Params(
      {{"steps", std::int64_t{3}}, {"rate", 0.25}, {"mode", std::string("slow")},
       {"names", std::vector<std::string>{"c"}}, {"file", std::string("/x")}}));
  EXPECT_EQ(read.steps, 3);
  EXPECT_DOUBLE_EQ(read.rate, 0.25);
  EXPECT_EQ(read.mode, "slow");
  EXPECT_EQ(read.names, std::vector<std::string>{"c"});
  EXPECT_EQ(read.file, "/x");
}

// The recipe's defaults are the trainer's: they were declared twice once, and drifted.
TEST(Options, TheRecipeSchemaHoldsTheTrainersDefaults) {
  const nas::Schema recipe = nas::recipe_schema();
  const nas::TrainOptions trainer;
  EXPECT_DOUBLE_EQ(std::get<double>(*nas::find_param(recipe, "grad_clip")->default_value), trainer.grad_clip);
  EXPECT_EQ(std::get<bool>(*nas::find_param(recipe, "channels_last")->default_value), trainer.channels_last);
  EXPECT_EQ(std::get<std::int64_t>(*nas::find_param(recipe, "epochs")->default_value), trainer.epochs);
  const nas::Recipe defaults = nas::Recipe::from(nas::default_params(recipe, "recipe"));
  EXPECT_EQ(defaults.data.batch_size, nas::DataOptions{}.batch_size);
  EXPECT_DOUBLE_EQ(defaults.training.lr, trainer.lr);
}

}  // namespace
