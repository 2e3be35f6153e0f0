#include "statistics.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include <boost/math/distributions/normal.hpp>

#include "nas/error.hpp"

namespace nas::stats {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// P(Z >= z) for a standard normal Z.
double normal_sf(double z) { return boost::math::cdf(boost::math::complement(boost::math::normal(), z)); }

// numpy's default quantile: linear interpolation between the closest ranks of sorted values.
double quantile(const std::vector<double>& sorted, double q) {
  const double h = q * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(h));
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (h - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

// sum over groups of tied values of t^3 - t (t: the group's size).
double tie_term(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  double term = 0;
  for (std::size_t i = 0; i < values.size();) {
    std::size_t j = i + 1;
    while (j < values.size() && values[j] == values[i]) ++j;
    const auto t = static_cast<double>(j - i);
    term += t * t * t - t;
    i = j;
  }
  return term;
}

}  // namespace

double mean(const std::vector<double>& values) {
  return std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
}

double sample_std(const std::vector<double>& values) {
  if (values.size() < 2) return kNaN;
  const double m = mean(values);
  double ss = 0;
  for (double v : values) ss += (v - m) * (v - m);
  return std::sqrt(ss / static_cast<double>(values.size() - 1));
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return quantile(values, 0.5);
}

double interquartile_mean(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t cut = values.size() / 4;  // SciPy's trim_mean(x, 0.25): int(0.25 * n) from each end
  return mean({values.begin() + static_cast<std::ptrdiff_t>(cut), values.end() - static_cast<std::ptrdiff_t>(cut)});
}

Summary summarize(const std::vector<double>& values, const BootstrapOptions& bootstrap) {
  if (values.empty()) throw Error("statistics: no values to summarize");
  Summary s{values.size(), mean(values), sample_std(values), median(values), interquartile_mean(values), 0, 0};
  std::mt19937_64 rng(bootstrap.seed);
  std::uniform_int_distribution<std::size_t> pick(0, values.size() - 1);
  std::vector<double> means(static_cast<std::size_t>(std::max<std::int64_t>(1, bootstrap.resamples)));
  for (double& m : means) {
    double sum = 0;
    for (std::size_t i = 0; i < values.size(); ++i) sum += values[pick(rng)];
    m = sum / static_cast<double>(values.size());
  }
  std::sort(means.begin(), means.end());
  const double tail = (1 - bootstrap.confidence) / 2;
  s.ci_low = quantile(means, tail);
  s.ci_high = quantile(means, 1 - tail);
  return s;
}

std::vector<double> average_ranks(const std::vector<double>& values) {
  std::vector<std::size_t> order(values.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return values[a] < values[b]; });
  std::vector<double> ranks(values.size());
  for (std::size_t i = 0; i < order.size();) {
    std::size_t j = i + 1;
    while (j < order.size() && values[order[j]] == values[order[i]]) ++j;
    const double rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2;  // mean of ranks i+1 .. j
    for (std::size_t k = i; k < j; ++k) ranks[order[k]] = rank;
    i = j;
  }
  return ranks;
}

TestResult mann_whitney_u(const std::vector<double>& x, const std::vector<double>& y) {
  if (x.empty() || y.empty()) throw Error("statistics: Mann-Whitney U needs two non-empty samples");
  std::vector<double> all = x;
  all.insert(all.end(), y.begin(), y.end());
  const std::vector<double> ranks = average_ranks(all);
  const auto m = static_cast<double>(x.size()), n = static_cast<double>(y.size());
  const double rank_sum_x = std::accumulate(ranks.begin(), ranks.begin() + static_cast<std::ptrdiff_t>(x.size()), 0.0);
  const double u1 = rank_sum_x - m * (m + 1) / 2, u2 = m * n - u1;
  const double u = std::max(u1, u2);  // the two-sided p is twice the upper tail of the larger
  const double ties = tie_term(all);
  TestResult result{"mann-whitney", u1, 1, false, u1 > u2 ? 1 : u1 < u2 ? -1 : 0};
  if ((x.size() <= 8 || y.size() <= 8) && ties == 0) {
    // Exact: U + k(k+1)/2 is the rank sum of the smaller sample (size k) among N, a size-k subset of
    // 1..N, every subset equally likely. count[j][s]: subsets of size j with sum s.
    const std::size_t k = std::min(x.size(), y.size()), total = x.size() + y.size();
    const std::size_t max_sum = k * total;
    std::vector<std::vector<double>> count(k + 1, std::vector<double>(max_sum + 1, 0));
    count[0][0] = 1;
    for (std::size_t item = 1; item <= total; ++item)
      for (std::size_t j = std::min(k, item); j >= 1; --j)
        for (std::size_t s = max_sum; s >= item; --s) count[j][s] += count[j - 1][s - item];
    double all_subsets = 0, upper = 0;
    const double offset = static_cast<double>(k * (k + 1) / 2);
    for (std::size_t s = 0; s <= max_sum; ++s) {
      all_subsets += count[k][s];
      if (static_cast<double>(s) - offset >= u) upper += count[k][s];
    }
    result.p = std::min(1.0, 2 * upper / all_subsets);
    result.exact = true;
    return result;
  }
  const double total = m + n;
  const double sigma = std::sqrt(m * n / 12 * ((total + 1) - ties / (total * (total - 1))));
  if (sigma == 0) return result;  // every value equal: no evidence either way
  result.p = std::min(1.0, 2 * normal_sf((u - m * n / 2 - 0.5) / sigma));
  return result;
}

TestResult wilcoxon_signed_rank(const std::vector<double>& x, const std::vector<double>& y) {
  if (x.size() != y.size()) throw Error("statistics: the Wilcoxon signed-rank test needs pairs");
  std::vector<double> d;
  for (std::size_t i = 0; i < x.size(); ++i)
    if (x[i] != y[i]) d.push_back(x[i] - y[i]);
  TestResult result{"wilcoxon", 0, 1, true, 0};
  if (d.empty()) return result;  // every pair equal
  std::vector<double> magnitude;
  for (double v : d) magnitude.push_back(std::abs(v));
  const std::vector<double> ranks = average_ranks(magnitude);
  double r_plus = 0, r_minus = 0;
  for (std::size_t i = 0; i < d.size(); ++i) (d[i] > 0 ? r_plus : r_minus) += ranks[i];
  result.statistic = std::min(r_plus, r_minus);
  result.direction = r_plus > r_minus ? 1 : r_plus < r_minus ? -1 : 0;
  const auto n = static_cast<double>(d.size());
  if (d.size() <= 50) {
    // Midranks are multiples of 1/2: count sign assignments by the doubled rank sum of the positives.
    std::size_t max_sum = 0;
    std::vector<std::size_t> doubled;
    for (double r : ranks) max_sum += doubled.emplace_back(static_cast<std::size_t>(std::lround(2 * r)));
    std::vector<double> count(max_sum + 1, 0);
    count[0] = 1;
    for (std::size_t w : doubled)
      for (std::size_t s = max_sum; s >= w; --s) count[s] += count[s - w];
    const auto observed = static_cast<std::size_t>(std::lround(2 * r_plus));
    double lower = 0, upper = 0, all = 0;
    for (std::size_t s = 0; s <= max_sum; ++s) {
      all += count[s];
      if (s <= observed) lower += count[s];
      if (s >= observed) upper += count[s];
    }
    result.p = std::min(1.0, 2 * std::min(lower, upper) / all);
    return result;
  }
  result.exact = false;
  const double sigma = std::sqrt(n * (n + 1) * (2 * n + 1) / 24 - tie_term(magnitude) / 48);
  result.p = std::min(1.0, 2 * normal_sf(std::abs(r_plus - n * (n + 1) / 4) / sigma));
  return result;
}

std::vector<double> holm(const std::vector<double>& p) {
  std::vector<std::size_t> order(p.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return p[a] < p[b]; });
  std::vector<double> adjusted(p.size());
  double running = 0;  // adjusted p-values never decrease along the sorted order
  for (std::size_t i = 0; i < order.size(); ++i) {
    running = std::max(running, std::min(1.0, static_cast<double>(p.size() - i) * p[order[i]]));
    adjusted[order[i]] = running;
  }
  return adjusted;
}

double vargha_delaney_a12(const std::vector<double>& x, const std::vector<double>& y) {
  if (x.empty() || y.empty()) throw Error("statistics: A12 needs two non-empty samples");
  double wins = 0;
  for (double a : x)
    for (double b : y) wins += a > b ? 1.0 : a == b ? 0.5 : 0.0;
  return wins / (static_cast<double>(x.size()) * static_cast<double>(y.size()));
}

std::string a12_magnitude(double a12) {
  const double distance = std::abs(a12 - 0.5);
  if (distance < 0.06) return "negligible";
  if (distance < 0.14) return "small";
  if (distance < 0.21) return "medium";
  return "large";
}

}  // namespace nas::stats
