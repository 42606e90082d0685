// Evaluation metrics of the paper: ACC, SEN (recall of malignant), SPE (recall of benign) and AUC
// for the classifier; DSC and IoU for the masks. A rate whose denominator is zero (no malignant
// case for SEN, no benign case for SPE, a single class for AUC, nothing to average) is NaN, not
// 0 or 1: a fold without positives has no sensitivity, and a made-up number would leak into
// cross-validation means unnoticed. Invalid input (size mismatch, label not 0/1, NaN
// probability) throws std::invalid_argument.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace emt {

struct ClassificationMetrics {
  double acc = 0, sen = 0, spe = 0, auc = 0;
  int64_t tp = 0, tn = 0, fp = 0, fn = 0;
  double threshold = 0.5;
};

// Checks scored labels as every metric here does (sizes match, labels 0/1, no NaN probability;
// std::invalid_argument naming `caller` otherwise) and counts the classes.
struct ClassCounts {
  int64_t positives = 0, negatives = 0;
};
ClassCounts check_scored_labels(std::span<const float> probs, std::span<const int> labels,
                                const char* caller);

// labels: 0 benign, 1 malignant; a case is predicted malignant iff prob >= threshold.
ClassificationMetrics classification_metrics(std::span<const float> probs,
                                             std::span<const int> labels, double threshold);

// Mann-Whitney U / (P N): the probability that a random malignant case scores above a random
// benign one, a tie counting 1/2.
double roc_auc(std::span<const float> probs, std::span<const int> labels);

// (fpr, tpr) for every distinct score used as threshold, from (0, 0) to (1, 1), fpr ascending.
std::vector<std::pair<double, double>> roc_curve(std::span<const float> probs,
                                                 std::span<const int> labels);

// The operating threshold for "miss at most (1 - target_sensitivity) of cancers", target in
// (0, 1]. Of the cuts between consecutive distinct scores whose sensitivity (as
// classification_metrics computes it) reaches the target, the one with the highest accuracy
// (on a tie, the more sensitive cut), placed midway between the lowest score it calls malignant
// and the highest it calls benign. Choosing the highest such threshold instead (the best
// specificity) puts the cut on the very positive score that just reaches the target: on a
// validation split of a few dozen cancers that trades positives for negatives one for one and
// leaves no margin, and new cases fall below it.
double threshold_for_sensitivity(std::span<const float> probs, std::span<const int> labels,
                                 double target_sensitivity);

// Scores of one hard mask: pixels with prob >= threshold against target >= 0.5. Two empty masks
// agree perfectly (1, 1): a correct "no lesion" must not count as a failure.
struct MaskScore {
  double dice = 0, iou = 0;
};
MaskScore mask_score(std::span<const float> probs, std::span<const float> target,
                     double threshold = 0.5);

// Means of per-image scores (the paper's DSC and IoU), not scores of the pooled pixels.
struct SegmentationMetrics {
  double dsc = 0, iou = 0;
};
SegmentationMetrics mean_mask_scores(std::span<const MaskScore> scores);

}  // namespace emt
