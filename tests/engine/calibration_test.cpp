// Calibration measures against hand-computed values and brute force.
#include "engine/eval/calibration.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace emt {
namespace {

TEST(Calibration, BrierScoreIsTheMeanSquaredError) {
  const std::vector<float> probs = {0.9f, 0.2f, 0.6f, 0.0f};
  const std::vector<int> labels = {1, 0, 0, 0};
  // (0.1^2 + 0.2^2 + 0.6^2 + 0) / 4 = 0.41 / 4
  EXPECT_NEAR(brier_score(probs, labels), 0.1025, 1e-7);
  EXPECT_TRUE(std::isnan(brier_score({}, {})));
}

TEST(Calibration, ExpectedCalibrationErrorByHand) {
  // Bin [0.1,0.2): probs 0.15, 0.15, labels 0, 1: |0.5 - 0.15| weighted 2/5.
  // Bin [0.9,1.0]: probs 0.95, 1.0, 0.95, labels 1, 1, 0: |2/3 - 0.9666..| weighted 3/5.
  const std::vector<float> probs = {0.15f, 0.15f, 0.95f, 1.0f, 0.95f};
  const std::vector<int> labels = {0, 1, 1, 1, 0};
  const double expected =
      0.4 * std::abs(0.5 - 0.15) + 0.6 * std::abs(2.0 / 3.0 - (0.95 + 1.0 + 0.95) / 3.0);
  EXPECT_NEAR(expected_calibration_error(probs, labels), expected, 1e-6);
  const std::vector<ReliabilityBin> bins = reliability_bins(probs, labels);
  ASSERT_EQ(bins.size(), 10u);
  EXPECT_EQ(bins[1].count, 2);
  EXPECT_EQ(bins[9].count, 3);  // 1.0 falls in the last, closed bin
  EXPECT_TRUE(std::isnan(bins[5].mean_prob));
}

TEST(Calibration, RejectsMismatchedOrInvalidInput) {
  EXPECT_THROW(brier_score(std::vector<float>{0.5f}, std::vector<int>{}), std::invalid_argument);
  EXPECT_THROW(expected_calibration_error(std::vector<float>{0.5f}, std::vector<int>{2}),
               std::invalid_argument);
  EXPECT_THROW(fit_temperature(std::vector<float>{NAN}, std::vector<int>{1}),
               std::invalid_argument);
  EXPECT_THROW(apply_temperature(0.5f, 0.0), std::invalid_argument);
}

// Labels drawn from sigmoid(z) while the model reports sigmoid(3 z): over-confident by a factor
// of 3, so the fitted temperature is close to 3, and it matches a brute-force grid search.
TEST(Calibration, TemperatureUndoesOverconfidenceAndMatchesGridSearch) {
  std::mt19937 rng(7);
  std::normal_distribution<double> logit(0.0, 1.5);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<float> probs;
  std::vector<int> labels;
  for (int i = 0; i < 20000; ++i) {
    const double z = logit(rng);
    labels.push_back(u(rng) < 1 / (1 + std::exp(-z)) ? 1 : 0);
    probs.push_back(static_cast<float>(1 / (1 + std::exp(-3 * z))));
  }
  const double t = fit_temperature(probs, labels);
  EXPECT_NEAR(t, 3.0, 0.15);

  const auto nll = [&](double temperature) {
    double sum = 0;
    for (size_t i = 0; i < probs.size(); ++i) {
      const double p = apply_temperature(probs[i], temperature);
      sum -= labels[i] ? std::log(p) : std::log(1 - p);
    }
    return sum;
  };
  double best_t = 0, best = INFINITY;
  for (double c = 1.0; c <= 6.0; c += 0.01)
    if (nll(c) < best) best = nll(c), best_t = c;
  EXPECT_NEAR(t, best_t, 0.011);

  std::vector<float> scaled;
  for (float p : probs) scaled.push_back(apply_temperature(p, t));
  EXPECT_LT(expected_calibration_error(scaled, labels),
            0.5 * expected_calibration_error(probs, labels));
}

TEST(Calibration, OneClassKeepsTheIdentityTemperature) {
  EXPECT_EQ(fit_temperature(std::vector<float>{0.2f, 0.9f}, std::vector<int>{1, 1}), 1.0);
  EXPECT_NEAR(apply_temperature(0.73f, 1.0), 0.73f, 1e-6);
}

}  // namespace
}  // namespace emt
