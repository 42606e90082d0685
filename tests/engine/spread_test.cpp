// Mean, sd and the 95% t interval across runs, against hand-computed values and a t table.
#include "engine/experiments/spread.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

TEST(Spread, TQuantilesMatchTheTableAndTheIntegratedDensityBeyondIt) {
  // Tabulated values (NIST/SEMATECH), then df > 30 from integrating the t density numerically
  // (Simpson, 20000 intervals) and bisecting for the 0.975 point.
  EXPECT_NEAR(emt::t_quantile_975(1), 12.706205, 1e-6);
  EXPECT_NEAR(emt::t_quantile_975(3), 3.182446, 1e-6);
  EXPECT_NEAR(emt::t_quantile_975(30), 2.042272, 1e-6);
  EXPECT_NEAR(emt::t_quantile_975(31), 2.039513, 1e-5);
  EXPECT_NEAR(emt::t_quantile_975(40), 2.021075, 1e-5);
  EXPECT_NEAR(emt::t_quantile_975(120), 1.979930, 1e-5);
  EXPECT_NEAR(emt::t_quantile_975(1000), 1.962339, 1e-5);
  EXPECT_THROW(emt::t_quantile_975(0), std::invalid_argument);
}

TEST(Spread, FourRunsGiveTheHandComputedMeanSdAndInterval) {
  // mean 0.75; squared deviations 0.0025, 0.0225, 0.0025, 0.0225 sum to 0.05, sd =
  // sqrt(0.05 / 3) = 0.1290994; half width = 3.182446 * 0.1290994 / 2 = 0.2054270.
  const std::vector<double> values = {0.8, 0.9, 0.7, 0.6};
  const emt::Spread s = emt::spread(values);
  EXPECT_EQ(s.n, 4);
  EXPECT_NEAR(s.mean, 0.75, 1e-12);
  EXPECT_NEAR(s.sd, 0.1290994, 1e-7);
  EXPECT_NEAR(s.ci_low, 0.5445730, 1e-6);
  EXPECT_NEAR(s.ci_high, 0.9554270, 1e-6);
}

TEST(Spread, UndefinedRunsAreLeftOutAndOneRunHasNoSpread) {
  const std::vector<double> with_nan = {0.5, kNaN, 0.7};
  const emt::Spread s = emt::spread(with_nan);
  EXPECT_EQ(s.n, 2);
  EXPECT_NEAR(s.mean, 0.6, 1e-12);
  // sd = sqrt(0.02) = 0.1414214; half width = 12.706205 * 0.1414214 / sqrt(2) = 1.2706205.
  EXPECT_NEAR(s.sd, 0.1414214, 1e-7);
  EXPECT_NEAR(s.ci_high - s.mean, 1.2706205, 1e-6);

  const std::vector<double> one = {0.9};
  const emt::Spread single = emt::spread(one);
  EXPECT_EQ(single.n, 1);
  EXPECT_EQ(single.mean, 0.9);
  EXPECT_TRUE(std::isnan(single.sd));
  EXPECT_TRUE(std::isnan(single.ci_low));
  EXPECT_TRUE(std::isnan(emt::spread(std::vector<double>{kNaN}).mean));
}

}  // namespace
