// The statistics an ablation reports: summaries with bootstrap intervals, rank tests against a
// baseline (Mann-Whitney U, Wilcoxon signed-rank), Holm's correction and the Vargha-Delaney effect
// size. Higher values are better everywhere. Values must be finite. Conventions follow SciPy's
// (tests/unit/test_statistics.cpp checks them against SciPy's own values). Internal to the host
// (exported for its tests).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nas/api.hpp"

namespace nas::stats {

struct Summary {
  std::size_t n = 0;
  double mean = 0, std = 0, median = 0;  ///< std with n - 1 (NaN for n < 2)
  double iqm = 0;                        ///< interquartile mean: the mean of the middle half (SciPy's trim_mean 0.25)
  double ci_low = 0, ci_high = 0;        ///< percentile bootstrap interval of the mean
};

struct BootstrapOptions {
  std::int64_t resamples = 10000;
  double confidence = 0.95;
  std::uint64_t seed = 0;
};

/// Summary of `values` (not empty); the same interval for the same values and options.
NAS_API Summary summarize(const std::vector<double>& values, const BootstrapOptions& bootstrap);

NAS_API double mean(const std::vector<double>& values);
NAS_API double sample_std(const std::vector<double>& values);
NAS_API double median(std::vector<double> values);
NAS_API double interquartile_mean(std::vector<double> values);

/// Ranks from 1 (the smallest value), ties sharing the mean of their ranks.
NAS_API std::vector<double> average_ranks(const std::vector<double>& values);

struct TestResult {
  std::string test;    ///< "mann-whitney" or "wilcoxon"
  double statistic = 0;
  double p = 1;        ///< two-sided
  bool exact = false;  ///< from the exact distribution, not the normal approximation
  int direction = 0;   ///< +1: x tends to be larger (U of x above mn/2; R+ above R-), -1: smaller, 0: neither
};

/// Mann-Whitney U of x against y, two-sided; statistic U of x (SciPy's mannwhitneyu). Exact when the
/// smaller sample has at most 8 values and nothing ties, else normal with tie and continuity corrections.
NAS_API TestResult mann_whitney_u(const std::vector<double>& x, const std::vector<double>& y);

/// Wilcoxon signed-rank test of the pairs (x[i], y[i]), two-sided; zero differences are dropped
/// (SciPy's zero_method 'wilcox'); statistic min(R+, R-). Up to 50 pairs, exact: the distribution of
/// R+ over every assignment of signs to the ranks as they are, ties included (what SciPy computes up
/// to 13 pairs with ties, by exhaustive permutation; from 14 it samples permutations, where this stays
/// exact); more: normal with the tie correction, no continuity correction. Differences are taken as
/// computed: two that print alike but differ in the last bit do not tie (as in SciPy).
NAS_API TestResult wilcoxon_signed_rank(const std::vector<double>& x, const std::vector<double>& y);

/// Holm-Bonferroni adjusted p-values, in the order given.
NAS_API std::vector<double> holm(const std::vector<double>& p);

/// Vargha-Delaney A12: the probability that a value of x beats one of y, ties counting half.
NAS_API double vargha_delaney_a12(const std::vector<double>& x, const std::vector<double>& y);

/// "negligible", "small", "medium" or "large" (Vargha and Delaney's thresholds on |A12 - 0.5|).
NAS_API std::string a12_magnitude(double a12);

}  // namespace nas::stats
