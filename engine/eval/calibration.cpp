#include "engine/eval/calibration.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "engine/eval/metrics.h"

namespace emt {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kProbFloor = 1e-7;
constexpr double kMinLogT = -4.1588830833596715;  // log(1/64)
constexpr double kMaxLogT = 4.1588830833596715;   // log(64)

double logit(double p) {
  p = std::clamp(p, kProbFloor, 1 - kProbFloor);
  return std::log(p / (1 - p));
}

// Mean binary cross-entropy of sigmoid(z / T) on logits z, in the stable softplus form.
double mean_nll(std::span<const double> logits, std::span<const int> labels, double temperature) {
  double sum = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    const double z = logits[i] / temperature;
    const double softplus = std::max(z, 0.0) + std::log1p(std::exp(-std::abs(z)));
    sum += softplus - (labels[i] == 1 ? z : 0.0);
  }
  return sum / static_cast<double>(logits.size());
}

}  // namespace

double brier_score(std::span<const float> probs, std::span<const int> labels) {
  check_scored_labels(probs, labels, "brier_score");
  if (probs.empty()) return kNaN;
  double sum = 0;
  for (size_t i = 0; i < probs.size(); ++i) {
    const double d = static_cast<double>(probs[i]) - labels[i];
    sum += d * d;
  }
  return sum / static_cast<double>(probs.size());
}

std::vector<ReliabilityBin> reliability_bins(std::span<const float> probs,
                                             std::span<const int> labels, int bins) {
  check_scored_labels(probs, labels, "reliability_bins");
  if (bins < 1) throw std::invalid_argument("reliability_bins: bins must be >= 1");
  std::vector<ReliabilityBin> out(static_cast<size_t>(bins));
  std::vector<double> prob_sum(out.size(), 0.0), positives(out.size(), 0.0);
  for (size_t i = 0; i < probs.size(); ++i) {
    const double p = std::clamp(static_cast<double>(probs[i]), 0.0, 1.0);
    const size_t k = std::min(static_cast<size_t>(p * bins), out.size() - 1);
    ++out[k].count;
    prob_sum[k] += p;
    positives[k] += labels[i];
  }
  for (size_t k = 0; k < out.size(); ++k) {
    out[k].lower = static_cast<double>(k) / bins;
    out[k].upper = static_cast<double>(k + 1) / bins;
    const double n = static_cast<double>(out[k].count);
    out[k].mean_prob = out[k].count ? prob_sum[k] / n : kNaN;
    out[k].positive_rate = out[k].count ? positives[k] / n : kNaN;
  }
  return out;
}

double expected_calibration_error(std::span<const float> probs, std::span<const int> labels,
                                  int bins) {
  if (probs.empty()) return kNaN;
  double ece = 0;
  for (const ReliabilityBin& b : reliability_bins(probs, labels, bins))
    if (b.count)
      ece += static_cast<double>(b.count) / static_cast<double>(probs.size()) *
             std::abs(b.positive_rate - b.mean_prob);
  return ece;
}

double fit_temperature(std::span<const float> probs, std::span<const int> labels) {
  const ClassCounts counts = check_scored_labels(probs, labels, "fit_temperature");
  if (counts.positives == 0 || counts.negatives == 0) return 1.0;
  std::vector<double> logits(probs.size());
  for (size_t i = 0; i < probs.size(); ++i) logits[i] = logit(probs[i]);
  const auto cost = [&](double log_t) { return mean_nll(logits, labels, std::exp(log_t)); };
  // Golden-section search: the NLL is convex in 1/T, hence unimodal in log T.
  const double ratio = (std::sqrt(5.0) - 1) / 2;
  double lo = kMinLogT, hi = kMaxLogT;
  double a = hi - ratio * (hi - lo), b = lo + ratio * (hi - lo);
  double fa = cost(a), fb = cost(b);
  for (int iter = 0; iter < 100 && hi - lo > 1e-9; ++iter) {
    if (fa < fb) {
      hi = b, b = a, fb = fa;
      a = hi - ratio * (hi - lo), fa = cost(a);
    } else {
      lo = a, a = b, fa = fb;
      b = lo + ratio * (hi - lo), fb = cost(b);
    }
  }
  return std::exp((lo + hi) / 2);
}

float apply_temperature(float prob, double temperature) {
  if (!(temperature > 0) || !std::isfinite(temperature))
    throw std::invalid_argument("apply_temperature: temperature must be finite and > 0");
  const double z = logit(prob) / temperature;
  return static_cast<float>(1 / (1 + std::exp(-z)));
}

}  // namespace emt
