// The ablation statistics against values computed independently with SciPy 1.17.1 and statsmodels
// 0.14 (the snippets that produced them are in the comments).
#include <cmath>

#include <gtest/gtest.h>

#include "ablation/statistics.hpp"

namespace nas::stats {
namespace {

using V = std::vector<double>;

const V x9{0.61, 0.72, 0.55, 0.80, 0.67, 0.74, 0.59, 0.70, 0.77};
const V y10{0.52, 0.63, 0.49, 0.58, 0.66, 0.54, 0.60, 0.57, 0.51, 0.65};

TEST(Statistics, MannWhitneyExactForSmallSamplesWithoutTies) {
  // stats.mannwhitneyu([1.1, 2.3, 3.5], [4.2, 5.0, 6.1, 0.5]) -> statistic 3.0, pvalue 0.4 (exact)
  const TestResult r = mann_whitney_u({1.1, 2.3, 3.5}, {4.2, 5.0, 6.1, 0.5});
  EXPECT_TRUE(r.exact);
  EXPECT_DOUBLE_EQ(r.statistic, 3.0);
  EXPECT_NEAR(r.p, 0.4, 1e-12);
}

TEST(Statistics, MannWhitneyWithTiesUsesTheCorrectedNormal) {
  // stats.mannwhitneyu([1, 2, 2, 3, 5], [2, 3, 3, 4, 6, 7]) -> 7.0, 0.16304505585423734
  const TestResult r = mann_whitney_u({1, 2, 2, 3, 5}, {2, 3, 3, 4, 6, 7});
  EXPECT_FALSE(r.exact);
  EXPECT_DOUBLE_EQ(r.statistic, 7.0);
  EXPECT_NEAR(r.p, 0.16304505585423734, 1e-12);
}

TEST(Statistics, MannWhitneyAsymptoticForLargerSamples) {
  // stats.mannwhitneyu(x9, y10) -> 77.0, 0.010112333921333462
  const TestResult r = mann_whitney_u(x9, y10);
  EXPECT_FALSE(r.exact);
  EXPECT_DOUBLE_EQ(r.statistic, 77.0);
  EXPECT_NEAR(r.p, 0.010112333921333462, 1e-12);
  EXPECT_EQ(r.direction, 1) << "x9 tends to be larger";
  EXPECT_NEAR(mann_whitney_u(y10, x9).p, r.p, 1e-15) << "two-sided: symmetric in its samples";
  EXPECT_EQ(mann_whitney_u(y10, x9).direction, -1);
}

TEST(Statistics, WilcoxonExactForThreePairs) {
  // stats.wilcoxon([1.0, 2.0, 3.0], [0.4, 2.7, 1.1]) -> 2.0, 0.75
  const TestResult r = wilcoxon_signed_rank({1.0, 2.0, 3.0}, {0.4, 2.7, 1.1});
  EXPECT_TRUE(r.exact);
  EXPECT_DOUBLE_EQ(r.statistic, 2.0);
  EXPECT_NEAR(r.p, 0.75, 1e-12);
}

TEST(Statistics, WilcoxonWithTiesAndZerosIsTheExactPermutationTest) {
  // xt = [0.9, 0.8, 0.85, 0.7, 0.9, 0.6, 0.75, 0.8, 0.95, 0.65]
  // yt = [0.8, 0.8, 0.75, 0.8, 0.8, 0.7, 0.65, 0.6, 0.85, 0.55]
  // stats.wilcoxon(xt, yt) -> 12.0, 0.28515625 (zeros dropped; ties: SciPy's exhaustive permutation test)
  const TestResult r = wilcoxon_signed_rank({0.9, 0.8, 0.85, 0.7, 0.9, 0.6, 0.75, 0.8, 0.95, 0.65},
                                            {0.8, 0.8, 0.75, 0.8, 0.8, 0.7, 0.65, 0.6, 0.85, 0.55});
  EXPECT_DOUBLE_EQ(r.statistic, 12.0);
  EXPECT_NEAR(r.p, 0.28515625, 1e-12);
}

TEST(Statistics, WilcoxonNormalApproximationAboveFiftyPairs) {
  // rng = np.random.default_rng(3); a = np.round(rng.normal(0.5, 0.1, 60), 3)
  // b = np.round(a + rng.normal(0.02, 0.05, 60), 3); stats.wilcoxon(b, a) -> 606.0, 0.022919499583590595
  const V b{0.642, 0.267, 0.514, 0.501, 0.373, 0.452, 0.353, 0.555, 0.325, 0.827, 0.559, 0.455, 0.572, 0.393, 0.432,
            0.429, 0.638, 0.495, 0.597, 0.414, 0.606, 0.713, 0.613, 0.526, 0.519, 0.542, 0.674, 0.453, 0.565, 0.547,
            0.401, 0.475, 0.619, 0.607, 0.467, 0.5,   0.237, 0.683, 0.462, 0.364, 0.532, 0.605, 0.464, 0.453, 0.483,
            0.522, 0.655, 0.622, 0.55,  0.759, 0.574, 0.502, 0.476, 0.561, 0.469, 0.469, 0.429, 0.33,  0.642, 0.504};
  const V a{0.704, 0.244, 0.542, 0.443, 0.455, 0.478, 0.298, 0.477, 0.413, 0.832, 0.523, 0.465, 0.472, 0.433, 0.394,
            0.461, 0.548, 0.476, 0.596, 0.48,  0.502, 0.655, 0.555, 0.449, 0.482, 0.554, 0.694, 0.473, 0.476, 0.6,
            0.411, 0.471, 0.588, 0.558, 0.509, 0.567, 0.217, 0.602, 0.404, 0.333, 0.528, 0.57,  0.456, 0.392, 0.503,
            0.495, 0.641, 0.575, 0.519, 0.611, 0.479, 0.407, 0.558, 0.558, 0.479, 0.422, 0.523, 0.251, 0.569, 0.549};
  const TestResult r = wilcoxon_signed_rank(b, a);
  EXPECT_FALSE(r.exact);
  EXPECT_EQ(r.direction, 1) << "b = a + 0.02 on average";
  EXPECT_DOUBLE_EQ(r.statistic, 606.0);
  EXPECT_NEAR(r.p, 0.022919499583590595, 1e-10);
}

TEST(Statistics, IdenticalSamplesGiveNoEvidence) {
  EXPECT_DOUBLE_EQ(wilcoxon_signed_rank({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).p, 1.0);
  EXPECT_DOUBLE_EQ(mann_whitney_u({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).p, 1.0);
}

TEST(Statistics, HolmCorrection) {
  // multipletests([0.01, 0.04, 0.03, 0.005, 0.5], method="holm")[1] -> [0.04, 0.09, 0.09, 0.025, 0.5]
  const V adjusted = holm({0.01, 0.04, 0.03, 0.005, 0.5});
  const V expected{0.04, 0.09, 0.09, 0.025, 0.5};
  ASSERT_EQ(adjusted.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(adjusted[i], expected[i], 1e-12) << i;
}

TEST(Statistics, VarghaDelaneyA12) {
  // stats.mannwhitneyu(x9, y10).statistic / 90 -> 0.8555555555555555
  EXPECT_NEAR(vargha_delaney_a12(x9, y10), 0.8555555555555555, 1e-12);
  // ties count half: stats.mannwhitneyu([1, 2, 2], [2, 2, 3]).statistic / 9 -> 0.2222222222222222
  EXPECT_NEAR(vargha_delaney_a12({1, 2, 2}, {2, 2, 3}), 0.2222222222222222, 1e-12);
  EXPECT_EQ(a12_magnitude(0.8555), "large");
  EXPECT_EQ(a12_magnitude(0.52), "negligible");
  EXPECT_EQ(a12_magnitude(0.40), "small");
}

TEST(Statistics, SummaryOfASample) {
  // v = [0.3, 0.1, 0.4, 0.1, 0.5, 0.9, 0.2, 0.6, 0.5]
  // np.mean 0.4, np.std(ddof=1) 0.2598076211353316, np.median 0.4, stats.trim_mean(v, 0.25) 0.38
  // stats.bootstrap((v,), np.mean, n_resamples=200000, method="percentile") -> (0.2444, 0.5667)
  const V v{0.3, 0.1, 0.4, 0.1, 0.5, 0.9, 0.2, 0.6, 0.5};
  const Summary s = summarize(v, {.resamples = 20000, .confidence = 0.95, .seed = 7});
  EXPECT_EQ(s.n, 9u);
  EXPECT_NEAR(s.mean, 0.4, 1e-12);
  EXPECT_NEAR(s.std, 0.2598076211353316, 1e-12);
  EXPECT_NEAR(s.median, 0.4, 1e-12);
  EXPECT_NEAR(s.iqm, 0.38, 1e-12);
  // A different generator than SciPy's: the same interval up to resampling noise.
  EXPECT_NEAR(s.ci_low, 0.2444, 0.012);
  EXPECT_NEAR(s.ci_high, 0.5667, 0.012);
  const Summary again = summarize(v, {.resamples = 20000, .confidence = 0.95, .seed = 7});
  EXPECT_EQ(again.ci_low, s.ci_low) << "seeded: the same interval every time";
  EXPECT_EQ(again.ci_high, s.ci_high);
}

TEST(Statistics, SmallSamples) {
  // stats.trim_mean([0.2, 0.9, 0.4], 0.25) -> 0.5 (nothing trimmed from 3); rankdata([3, 1, 4, 1, 5])
  EXPECT_NEAR(interquartile_mean({0.2, 0.9, 0.4}), 0.5, 1e-12);
  EXPECT_EQ(average_ranks({3, 1, 4, 1, 5}), (V{3.0, 1.5, 4.0, 1.5, 5.0}));
  const Summary one = summarize({0.7}, {});
  EXPECT_TRUE(std::isnan(one.std));
  EXPECT_DOUBLE_EQ(one.ci_low, 0.7);
  EXPECT_DOUBLE_EQ(one.ci_high, 0.7);
}

}  // namespace
}  // namespace nas::stats
