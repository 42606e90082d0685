#include <algorithm>
#include <cmath>
#include <string>

#include "ops/core/op_error.h"
#include "ops/loss/loss.h"

namespace emt {

double weighted_bce_with_logits(std::span<const float> logits, std::span<const float> targets,
                                double pos_weight, std::span<float> grad, double scale) {
  if (logits.size() != targets.size()) {
    throw OpError("weighted_bce: logits have " + std::to_string(logits.size()) +
                  " elements but targets have " + std::to_string(targets.size()));
  }
  if (!grad.empty() && grad.size() != logits.size()) {
    throw OpError("weighted_bce: grad has " + std::to_string(grad.size()) +
                  " elements but logits have " + std::to_string(logits.size()));
  }
  if (logits.empty()) throw OpError("weighted_bce: the mean over zero elements is undefined");
  if (!(pos_weight >= 0.0) || !std::isfinite(pos_weight)) {
    throw OpError("weighted_bce: pos_weight must be finite and >= 0, got " +
                  std::to_string(pos_weight));
  }

  const double inv_m = 1.0 / static_cast<double>(logits.size());
  const double grad_scale = scale * inv_m;
  double sum = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) {
    const double z = logits[i];
    const double y = targets[i];
    // The paper's (1 - y) z + K sp(-z) is regrouped as pos_weight y sp(-z) + (1 - y) sp(z), the
    // same function with two non-negative terms: for y = 0 and z << 0 the paper's form subtracts
    // two near-equal numbers (-30 + 30.0000000000001) and keeps only a few correct digits.
    const double e = std::exp(-std::abs(z));  // never overflows, so sp and sigma stay exact
    const double log1p_e = std::log1p(e);
    const double softplus_pos = std::max(z, 0.0) + log1p_e;   // -log(1 - sigma(z))
    const double softplus_neg = std::max(-z, 0.0) + log1p_e;  // -log sigma(z)
    sum += pos_weight * y * softplus_neg + (1.0 - y) * softplus_pos;
    if (!grad.empty()) {
      const double sigma_abs = 1.0 / (1.0 + e);  // sigma(|z|), computed without cancellation
      const double sigma_pos = z >= 0.0 ? sigma_abs : e * sigma_abs;  // sigma(z)
      const double sigma_neg = z >= 0.0 ? e * sigma_abs : sigma_abs;  // sigma(-z)
      grad[i] +=
          static_cast<float>(grad_scale * ((1.0 - y) * sigma_pos - pos_weight * y * sigma_neg));
    }
  }
  return sum * inv_m;
}

}  // namespace emt
