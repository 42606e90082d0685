// Probability calibration of the classifier: how far its probabilities are from the observed
// frequencies (expected calibration error, Brier score, reliability bins), and temperature
// scaling, the one-parameter fix fitted on validation images: p' = sigmoid(logit(p) / T). T > 1
// softens an over-confident model; T changes no ranking, so AUC is unchanged. Invalid input
// (size mismatch, label not 0/1, NaN probability) throws std::invalid_argument.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace emt {

// Mean of (p - y)^2 over the cases; NaN for no case.
double brier_score(std::span<const float> probs, std::span<const int> labels);

// One of `bins` equal-width probability bins [k/bins, (k+1)/bins), the last one closed.
struct ReliabilityBin {
  double lower = 0, upper = 0;
  int64_t count = 0;
  double mean_prob = 0;      // NaN for an empty bin
  double positive_rate = 0;  // NaN for an empty bin
};
std::vector<ReliabilityBin> reliability_bins(std::span<const float> probs,
                                             std::span<const int> labels, int bins = 10);

// Sum over the bins of |positive_rate - mean_prob| weighted by the bin's share of the cases
// (equal-width bins, 10 by default); NaN for no case.
double expected_calibration_error(std::span<const float> probs, std::span<const int> labels,
                                  int bins = 10);

// The temperature in [1/64, 64] that minimises the mean binary cross-entropy of
// sigmoid(logit(p) / T) against the labels (the negative log-likelihood is convex in 1/T; found
// by golden-section search on log T). Probabilities are clamped to [1e-7, 1 - 1e-7] before the
// logit so that a saturated 0 or 1 stays finite. Returns 1 when the cases are all of one class.
double fit_temperature(std::span<const float> probs, std::span<const int> labels);

// sigmoid(logit(p) / temperature), with p clamped as in fit_temperature.
float apply_temperature(float prob, double temperature);

}  // namespace emt
