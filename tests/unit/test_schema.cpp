// Parameter specs: expected-form texts, typed access.
#include <gtest/gtest.h>

#include "nas/error.hpp"
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

}  // namespace
