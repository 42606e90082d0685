// Operating points: the threshold is chosen on validation images (e.g. "miss at most 5% of
// cancers" is sensitivity 0.95) and then applied unchanged to the test images, so the test
// figures are an honest estimate of what that threshold does on new cases.
#pragma once

#include <span>
#include <vector>

#include "engine/eval/evaluate.h"

namespace emt {

// Probabilities and labels of per-image results, in order. Throws std::invalid_argument when an
// image has no probability (a graph without classifier).
struct ScoredLabels {
  std::vector<float> probs;
  std::vector<int> labels;
};
ScoredLabels scored_labels(std::span<const ImageResult> images);

// One point of the ROC curve: cases with prob >= threshold are called malignant. The first point
// (0, 0) has threshold +infinity; then one point per distinct score, descending, as roc_curve.
struct RocPoint {
  double fpr = 0, tpr = 0, threshold = 0;
};
std::vector<RocPoint> roc_points(std::span<const float> probs, std::span<const int> labels);

struct OperatingPoint {
  double target_sensitivity = 0;
  double threshold = 0;        // threshold_for_sensitivity on val
  ClassificationMetrics val;   // at threshold
  ClassificationMetrics test;  // at the same threshold
};

// threshold_for_sensitivity on val, applied to test. Throws std::invalid_argument for a target
// outside (0, 1] and std::runtime_error when val has no malignant case (no threshold can be
// chosen) or either set is empty.
OperatingPoint choose_operating_point(std::span<const ImageResult> val,
                                      std::span<const ImageResult> test, double target_sensitivity);

}  // namespace emt
