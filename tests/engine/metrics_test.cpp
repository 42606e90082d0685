#include "engine/eval/metrics.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>
#include <vector>

namespace emt {
namespace {

// Scores on a coarse grid so that ties, within and across classes, are common.
void random_scored_labels(std::mt19937& rng, size_t n, std::vector<float>& probs,
                          std::vector<int>& labels) {
  std::uniform_int_distribution<int> level(0, 9), coin(0, 2);
  probs.resize(n);
  labels.resize(n);
  for (size_t i = 0; i < n; ++i) {
    labels[i] = coin(rng) == 0 ? 1 : 0;
    // Malignant cases lean higher, so the AUC is informative rather than ~0.5.
    probs[i] = static_cast<float>(std::min(9, level(rng) + 2 * labels[i])) / 9.0f;
  }
}

double brute_force_auc(const std::vector<float>& probs, const std::vector<int>& labels) {
  double wins = 0;
  int64_t pairs = 0;
  for (size_t i = 0; i < probs.size(); ++i) {
    for (size_t j = 0; j < probs.size(); ++j) {
      if (labels[i] != 1 || labels[j] != 0) continue;
      ++pairs;
      wins += probs[i] > probs[j] ? 1.0 : probs[i] == probs[j] ? 0.5 : 0.0;
    }
  }
  return wins / static_cast<double>(pairs);
}

TEST(ClassificationMetrics, HandComputedConfusionMatrix) {
  const std::vector<float> probs = {0.9f, 0.8f, 0.3f, 0.6f, 0.2f, 0.5f, 0.1f, 0.7f};
  const std::vector<int> labels = {1, 1, 1, 0, 0, 0, 0, 1};
  const ClassificationMetrics m = classification_metrics(probs, labels, 0.5);
  EXPECT_EQ(m.tp, 3);
  EXPECT_EQ(m.fn, 1);
  EXPECT_EQ(m.fp, 2);  // 0.5 >= 0.5 counts as malignant
  EXPECT_EQ(m.tn, 2);
  EXPECT_DOUBLE_EQ(m.acc, 5.0 / 8.0);
  EXPECT_DOUBLE_EQ(m.sen, 3.0 / 4.0);
  EXPECT_DOUBLE_EQ(m.spe, 2.0 / 4.0);
  EXPECT_DOUBLE_EQ(m.auc, 14.0 / 16.0);  // 0.3 beats only 0.2 and 0.1; the others beat all
  EXPECT_EQ(m.threshold, 0.5);
}

TEST(ClassificationMetrics, MissingClassGivesNaN) {
  const std::vector<float> probs = {0.2f, 0.7f};
  const std::vector<int> benign_only = {0, 0};
  const ClassificationMetrics m = classification_metrics(probs, benign_only, 0.5);
  EXPECT_TRUE(std::isnan(m.sen));
  EXPECT_DOUBLE_EQ(m.spe, 0.5);
  EXPECT_TRUE(std::isnan(m.auc));
  EXPECT_TRUE(std::isnan(classification_metrics({}, {}, 0.5).acc));
}

TEST(RocAuc, MatchesBruteForcePairCountWithTies) {
  std::mt19937 rng(42);
  for (size_t n : {2u, 7u, 50u, 301u}) {
    std::vector<float> probs;
    std::vector<int> labels;
    random_scored_labels(rng, n, probs, labels);
    labels[0] = 1;
    labels[1] = 0;
    EXPECT_NEAR(roc_auc(probs, labels), brute_force_auc(probs, labels), 1e-12) << "n=" << n;
  }
}

TEST(RocAuc, PerfectInvertedAndConstantClassifiers) {
  const std::vector<int> labels = {0, 1, 0, 1, 1, 0};
  const std::vector<float> perfect = {0.1f, 0.9f, 0.2f, 0.8f, 0.7f, 0.3f};
  std::vector<float> inverted(perfect.size());
  for (size_t i = 0; i < perfect.size(); ++i) inverted[i] = 1.0f - perfect[i];
  const std::vector<float> constant(labels.size(), 0.5f);
  EXPECT_EQ(roc_auc(perfect, labels), 1.0);
  EXPECT_EQ(roc_auc(inverted, labels), 0.0);
  EXPECT_EQ(roc_auc(constant, labels), 0.5);
  const ClassificationMetrics m = classification_metrics(perfect, labels, 0.5);
  EXPECT_EQ(m.acc, 1.0);
  EXPECT_EQ(m.sen, 1.0);
  EXPECT_EQ(m.spe, 1.0);
}

TEST(RocCurve, HandComputedPointsWithTies) {
  const std::vector<float> probs = {0.9f, 0.6f, 0.6f, 0.2f};
  const std::vector<int> labels = {1, 1, 0, 0};
  const std::vector<std::pair<double, double>> want = {
      {0.0, 0.0}, {0.0, 0.5}, {0.5, 1.0}, {1.0, 1.0}};
  EXPECT_EQ(roc_curve(probs, labels), want);
}

TEST(RocCurve, AreaUnderTheCurveIsTheAuc) {
  std::mt19937 rng(7);
  std::vector<float> probs;
  std::vector<int> labels;
  random_scored_labels(rng, 400, probs, labels);
  const auto points = roc_curve(probs, labels);
  ASSERT_EQ(points.front(), (std::pair<double, double>{0.0, 0.0}));
  ASSERT_EQ(points.back(), (std::pair<double, double>{1.0, 1.0}));
  double area = 0;
  for (size_t i = 1; i < points.size(); ++i) {
    EXPECT_GE(points[i].first, points[i - 1].first);
    area += (points[i].first - points[i - 1].first) * (points[i].second + points[i - 1].second) / 2;
  }
  EXPECT_NEAR(area, roc_auc(probs, labels), 1e-12);
}

// Hand-counted cuts (malignant iff prob >= cut), P = 4, N = 7:
//   cut 0.9: 1 + 7 = 8 correct (SEN .25)   cut 0.6: 3 + 6 = 9 (SEN .75)   cut 0.3: 4 + 4 = 8 (SEN
//   1)
TEST(ThresholdForSensitivity, TakesTheMostAccurateCutReachingTheTargetMidwayBetweenScores) {
  const std::vector<float> probs = {0.9f, 0.8f, 0.7f, 0.6f,  0.45f, 0.4f,
                                    0.3f, 0.2f, 0.1f, 0.05f, 0.02f};
  const std::vector<int> labels = {1, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0};
  const double between_06_045 = (static_cast<double>(0.6f) + 0.45f) / 2;
  EXPECT_DOUBLE_EQ(threshold_for_sensitivity(probs, labels, 0.25), between_06_045);
  EXPECT_DOUBLE_EQ(threshold_for_sensitivity(probs, labels, 0.75), between_06_045);
  EXPECT_DOUBLE_EQ(threshold_for_sensitivity(probs, labels, 1.0),
                   (static_cast<double>(0.3f) + 0.2f) / 2);
  // A tie (cuts 0.6 and 0.3 both 6 of 8 correct) goes to the more sensitive cut.
  const std::vector<float> tied = {0.9f, 0.8f, 0.7f, 0.6f, 0.4f, 0.3f, 0.2f, 0.1f};
  const std::vector<int> tied_labels = {1, 0, 1, 1, 0, 1, 0, 0};
  EXPECT_DOUBLE_EQ(threshold_for_sensitivity(tied, tied_labels, 0.75),
                   (static_cast<double>(0.3f) + 0.2f) / 2);
  // Only malignant cases: calling everything malignant is exact, at the lowest score.
  EXPECT_EQ(threshold_for_sensitivity(tied, std::vector<int>(tied.size(), 1), 0.9), 0.1f);
}

// Against every candidate threshold (each score, and the values just above and below it): none
// that reaches the target is more accurate, or as accurate and more sensitive.
TEST(ThresholdForSensitivity, NoOtherThresholdReachingTheTargetDoesBetter) {
  std::mt19937 rng(11);
  std::vector<float> probs;
  std::vector<int> labels;
  random_scored_labels(rng, 300, probs, labels);
  std::vector<double> candidates;
  for (const float p : probs)
    for (const float c : {std::nextafter(p, -1.0f), p, std::nextafter(p, 2.0f)})
      candidates.push_back(c);
  for (double target : {0.1, 0.5, 0.9, 0.95, 1.0}) {
    const double t = threshold_for_sensitivity(probs, labels, target);
    const ClassificationMetrics chosen = classification_metrics(probs, labels, t);
    EXPECT_GE(chosen.sen, target) << "target " << target;
    for (const double c : candidates) {
      const ClassificationMetrics other = classification_metrics(probs, labels, c);
      if (other.sen < target) continue;
      EXPECT_LE(other.acc, chosen.acc) << "target " << target << " threshold " << c;
      if (other.acc == chosen.acc) {
        EXPECT_LE(other.sen, chosen.sen) << "threshold " << c;
      }
    }
    // Midway between two scores, unless every case is called malignant.
    if (t != *std::min_element(probs.begin(), probs.end())) {
      EXPECT_EQ(std::count(probs.begin(), probs.end(), t), 0) << "target " << target;
    }
  }
  const std::vector<int> benign_only(probs.size(), 0);
  EXPECT_TRUE(std::isnan(threshold_for_sensitivity(probs, benign_only, 0.9)));
  EXPECT_THROW(threshold_for_sensitivity(probs, labels, 0.0), std::invalid_argument);
}

TEST(ClassificationMetrics, RejectsInvalidInput) {
  const std::vector<float> probs = {0.1f, 0.2f};
  EXPECT_THROW(classification_metrics(probs, std::vector<int>{0}, 0.5), std::invalid_argument);
  EXPECT_THROW(roc_auc(probs, std::vector<int>{0, 2}), std::invalid_argument);
  const std::vector<float> with_nan = {0.1f, std::nanf("")};
  EXPECT_THROW(roc_curve(with_nan, std::vector<int>{0, 1}), std::invalid_argument);
}

TEST(MaskScore, PartialOverlapHandComputed) {
  // predicted {0, 1, 4}, target {0, 2}: overlap 1 -> dice 2/5, iou 1/4
  const std::vector<float> probs = {0.7f, 0.5f, 0.49f, 0.0f, 0.9f, 0.1f};
  const std::vector<float> target = {1.0f, 0.0f, 1.0f, 0.0f, 0.0f, 0.0f};
  const MaskScore s = mask_score(probs, target);
  EXPECT_DOUBLE_EQ(s.dice, 0.4);
  EXPECT_DOUBLE_EQ(s.iou, 0.25);
}

TEST(MaskScore, EmptyMasks) {
  const std::vector<float> empty(9, 0.0f), low(9, 0.3f);
  std::vector<float> one_pixel(9, 0.0f);
  one_pixel[4] = 0.8f;
  EXPECT_EQ(mask_score(low, empty).dice, 1.0);  // both empty after thresholding
  EXPECT_EQ(mask_score(low, empty).iou, 1.0);
  EXPECT_EQ(mask_score(one_pixel, empty).dice, 0.0);
  EXPECT_EQ(mask_score(one_pixel, empty).iou, 0.0);
  EXPECT_THROW(mask_score(one_pixel, std::vector<float>(8)), std::invalid_argument);
}

TEST(MaskScore, MeanOfPerImageScores) {
  const std::vector<MaskScore> scores = {{1.0, 1.0}, {0.4, 0.25}, {0.0, 0.0}};
  const SegmentationMetrics m = mean_mask_scores(scores);
  EXPECT_DOUBLE_EQ(m.dsc, 1.4 / 3);
  EXPECT_DOUBLE_EQ(m.iou, 1.25 / 3);
  EXPECT_TRUE(std::isnan(mean_mask_scores({}).dsc));
}

}  // namespace
}  // namespace emt
