// Helpers for controllers over decision vectors (nas/controller.hpp).
#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

#include "nas/controller.hpp"
#include "nas/error.hpp"

namespace nas {

std::vector<std::int64_t> sample_decisions(const std::vector<Decision>& decisions, std::mt19937_64& rng) {
  std::vector<std::int64_t> values;
  values.reserve(decisions.size());
  for (const Decision& d : decisions) values.push_back(std::uniform_int_distribution<std::int64_t>(0, d.choices - 1)(rng));
  return values;
}

std::vector<std::int64_t> mutate_decisions(const std::vector<Decision>& decisions, std::vector<std::int64_t> values,
                                           std::mt19937_64& rng) {
  if (values.size() != decisions.size())
    throw Error(fmt::format("mutate: {} values for {} decisions", values.size(), decisions.size()));
  std::vector<std::size_t> mutable_positions;
  for (std::size_t i = 0; i < decisions.size(); ++i)
    if (decisions[i].choices > 1) mutable_positions.push_back(i);
  if (mutable_positions.empty()) return values;
  std::size_t at = mutable_positions[std::uniform_int_distribution<std::size_t>(0, mutable_positions.size() - 1)(rng)];
  // Another value, uniform among the other choices.
  std::int64_t other = std::uniform_int_distribution<std::int64_t>(0, decisions[at].choices - 2)(rng);
  values[at] = other >= values[at] ? other + 1 : other;
  return values;
}

std::vector<std::size_t> screen_order(const std::vector<std::optional<double>>& scores) {
  std::vector<std::size_t> order(scores.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  // NaN counts as unscored: compared as a number it is neither better nor worse than anything, which
  // breaks the strict weak order a sort needs (an undefined order, or a crash).
  auto scored = [&](std::size_t i) { return scores[i] && !std::isnan(*scores[i]); };
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    if (scored(a) != scored(b)) return scored(a);
    return scored(a) && *scores[a] > *scores[b];
  });
  return order;
}

}  // namespace nas
