#include "engine/eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <stdexcept>
#include <string>

namespace emt {

namespace {

// Rates are formed as double divisions so that an empty class gives 0.0 / 0 = NaN (see header).
double ratio(int64_t numerator, int64_t denominator) {
  return static_cast<double>(numerator) / static_cast<double>(denominator);
}

std::vector<size_t> order_by_score(std::span<const float> probs) {
  std::vector<size_t> order(probs.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return probs[a] < probs[b]; });
  return order;
}

}  // namespace

ClassCounts check_scored_labels(std::span<const float> probs, std::span<const int> labels,
                                const char* caller) {
  if (probs.size() != labels.size()) {
    throw std::invalid_argument(std::string(caller) + ": " + std::to_string(probs.size()) +
                                " probabilities but " + std::to_string(labels.size()) + " labels");
  }
  ClassCounts counts;
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] != 0 && labels[i] != 1) {
      throw std::invalid_argument(std::string(caller) + ": label " + std::to_string(labels[i]) +
                                  " at index " + std::to_string(i) + " is not 0 or 1");
    }
    // A NaN would also break the strict weak ordering the sorts below rely on.
    if (std::isnan(probs[i])) {
      throw std::invalid_argument(std::string(caller) + ": probability at index " +
                                  std::to_string(i) + " is NaN");
    }
    ++(labels[i] == 1 ? counts.positives : counts.negatives);
  }
  return counts;
}

ClassificationMetrics classification_metrics(std::span<const float> probs,
                                             std::span<const int> labels, double threshold) {
  check_scored_labels(probs, labels, "classification_metrics");
  if (std::isnan(threshold)) throw std::invalid_argument("classification_metrics: NaN threshold");
  ClassificationMetrics m;
  m.threshold = threshold;
  for (size_t i = 0; i < probs.size(); ++i) {
    const bool predicted = probs[i] >= threshold;
    if (labels[i] == 1) {
      ++(predicted ? m.tp : m.fn);
    } else {
      ++(predicted ? m.fp : m.tn);
    }
  }
  m.acc = ratio(m.tp + m.tn, static_cast<int64_t>(probs.size()));
  m.sen = ratio(m.tp, m.tp + m.fn);
  m.spe = ratio(m.tn, m.tn + m.fp);
  m.auc = roc_auc(probs, labels);
  return m;
}

double roc_auc(std::span<const float> probs, std::span<const int> labels) {
  const ClassCounts counts = check_scored_labels(probs, labels, "roc_auc");
  // Rank-sum form of U: O(n log n) instead of comparing all P * N pairs; a tied group shares
  // its average rank, which is exactly the 1/2 per tied pair.
  const std::vector<size_t> order = order_by_score(probs);
  double positive_rank_sum = 0.0;
  for (size_t begin = 0; begin < order.size();) {
    size_t end = begin;
    int64_t group_positives = 0;
    while (end < order.size() && probs[order[end]] == probs[order[begin]]) {
      group_positives += labels[order[end]];
      ++end;
    }
    const double average_rank = 0.5 * static_cast<double>(begin + 1 + end);
    positive_rank_sum += average_rank * static_cast<double>(group_positives);
    begin = end;
  }
  const double p = static_cast<double>(counts.positives);
  const double u = positive_rank_sum - p * (p + 1.0) / 2.0;
  return u / (p * static_cast<double>(counts.negatives));
}

std::vector<std::pair<double, double>> roc_curve(std::span<const float> probs,
                                                 std::span<const int> labels) {
  const ClassCounts counts = check_scored_labels(probs, labels, "roc_curve");
  std::vector<size_t> order = order_by_score(probs);
  std::reverse(order.begin(), order.end());
  std::vector<std::pair<double, double>> points = {{0.0, 0.0}};
  int64_t tp = 0, fp = 0;
  // Lowering the threshold past a group of tied scores admits the whole group at once.
  for (size_t begin = 0; begin < order.size();) {
    size_t end = begin;
    while (end < order.size() && probs[order[end]] == probs[order[begin]]) {
      ++(labels[order[end]] == 1 ? tp : fp);
      ++end;
    }
    points.emplace_back(ratio(fp, counts.negatives), ratio(tp, counts.positives));
    begin = end;
  }
  return points;
}

double threshold_for_sensitivity(std::span<const float> probs, std::span<const int> labels,
                                 double target_sensitivity) {
  const ClassCounts counts = check_scored_labels(probs, labels, "threshold_for_sensitivity");
  if (!(target_sensitivity > 0.0 && target_sensitivity <= 1.0)) {
    throw std::invalid_argument("threshold_for_sensitivity: target " +
                                std::to_string(target_sensitivity) + " is not in (0, 1]");
  }
  if (counts.positives == 0) return std::nan("");  // no cancer to detect: see header
  std::vector<std::pair<float, int>> scored(probs.size());
  for (size_t i = 0; i < probs.size(); ++i) scored[i] = {probs[i], labels[i]};
  std::sort(scored.begin(), scored.end(), std::greater<>());
  // Walking down the distinct scores, the cut at score s calls malignant every case >= s.
  int64_t tp = 0, fp = 0, best_correct = -1;
  double best = std::nan("");
  for (size_t i = 0; i < scored.size();) {
    const float score = scored[i].first;
    for (; i < scored.size() && scored[i].first == score; ++i) (scored[i].second ? tp : fp) += 1;
    if (ratio(tp, counts.positives) < target_sensitivity) continue;
    const int64_t correct = tp + (counts.negatives - fp);
    // >=: on a tie the lower cut, which calls more cases malignant, wins.
    if (correct < best_correct) continue;
    best_correct = correct;
    // Floats are exact in double, so the midpoint lies strictly between the two scores.
    best = i < scored.size() ? (static_cast<double>(score) + scored[i].first) / 2 : score;
  }
  return best;
}

MaskScore mask_score(std::span<const float> probs, std::span<const float> target,
                     double threshold) {
  if (probs.size() != target.size()) {
    throw std::invalid_argument("mask_score: prediction has " + std::to_string(probs.size()) +
                                " pixels but target has " + std::to_string(target.size()));
  }
  int64_t predicted = 0, actual = 0, both = 0;
  for (size_t i = 0; i < probs.size(); ++i) {
    const bool p = probs[i] >= threshold;
    const bool t = target[i] >= 0.5f;
    predicted += p;
    actual += t;
    both += p && t;
  }
  if (predicted == 0 && actual == 0) return {1.0, 1.0};
  return {ratio(2 * both, predicted + actual), ratio(both, predicted + actual - both)};
}

SegmentationMetrics mean_mask_scores(std::span<const MaskScore> scores) {
  double dice = 0.0, iou = 0.0;
  for (const MaskScore& s : scores) {
    dice += s.dice;
    iou += s.iou;
  }
  const auto n = static_cast<double>(scores.size());
  return {dice / n, iou / n};
}

}  // namespace emt
