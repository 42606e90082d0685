#include "engine/eval/operating_point.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>

namespace emt {

ScoredLabels scored_labels(std::span<const ImageResult> images) {
  ScoredLabels s;
  s.probs.reserve(images.size());
  s.labels.reserve(images.size());
  for (const ImageResult& r : images) {
    if (std::isnan(r.prob))
      throw std::invalid_argument("image '" + r.id + "' has no malignancy probability");
    s.probs.push_back(r.prob);
    s.labels.push_back(r.label);
  }
  return s;
}

std::vector<RocPoint> roc_points(std::span<const float> probs, std::span<const int> labels) {
  const std::vector<std::pair<double, double>> curve = roc_curve(probs, labels);
  // roc_curve emits (0, 0) and then one point per distinct score, highest score first.
  std::vector<float> scores(probs.begin(), probs.end());
  std::sort(scores.begin(), scores.end(), std::greater<>());
  scores.erase(std::unique(scores.begin(), scores.end()), scores.end());
  std::vector<RocPoint> points;
  points.reserve(curve.size());
  for (size_t i = 0; i < curve.size(); ++i) {
    const double threshold = i == 0 ? std::numeric_limits<double>::infinity() : scores[i - 1];
    points.push_back({curve[i].first, curve[i].second, threshold});
  }
  return points;
}

OperatingPoint choose_operating_point(std::span<const ImageResult> val,
                                      std::span<const ImageResult> test,
                                      double target_sensitivity) {
  if (val.empty() || test.empty())
    throw std::runtime_error("operating point: the validation and test sets must not be empty");
  const ScoredLabels v = scored_labels(val);
  const ScoredLabels t = scored_labels(test);
  OperatingPoint op;
  op.target_sensitivity = target_sensitivity;
  op.threshold = threshold_for_sensitivity(v.probs, v.labels, target_sensitivity);
  if (std::isnan(op.threshold)) {
    throw std::runtime_error(
        "operating point: the validation set has no malignant case, so no threshold reaches "
        "a sensitivity");
  }
  op.val = classification_metrics(v.probs, v.labels, op.threshold);
  op.test = classification_metrics(t.probs, t.labels, op.threshold);
  return op;
}

}  // namespace emt
