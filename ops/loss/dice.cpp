#include <string>

#include "ops/core/op_error.h"
#include "ops/loss/loss.h"

namespace emt {

// Why eps = 1 by default: the sums count pixels, so one pixel of smoothing moves the Dice of a
// real lesion (hundreds to thousands of pixels) by well under 1%, while it keeps every case
// defined and smooth. An empty target with an empty prediction scores a loss of exactly 0 (a
// correct "no lesion" answer is not punished), and an empty target with prediction mass S costs
// S / (S + 1), rising smoothly from 0 with a gradient of 1 / (S + 1)^2. A tiny eps (1e-7) would
// instead make that loss jump to ~1 for any stray probability and leave it flat, so nothing
// would pull false-positive pixels down.
double soft_dice_loss(std::span<const float> probs, std::span<const float> targets, int64_t batch,
                      double eps, std::span<float> grad, double scale) {
  if (probs.size() != targets.size()) {
    throw OpError("dice: probs have " + std::to_string(probs.size()) +
                  " elements but targets have " + std::to_string(targets.size()));
  }
  if (!grad.empty() && grad.size() != probs.size()) {
    throw OpError("dice: grad has " + std::to_string(grad.size()) + " elements but probs have " +
                  std::to_string(probs.size()));
  }
  const int64_t numel = static_cast<int64_t>(probs.size());
  if (batch <= 0 || numel % batch != 0) {
    throw OpError("dice: " + std::to_string(numel) + " elements do not split into a batch of " +
                  std::to_string(batch));
  }
  if (!(eps > 0.0)) throw OpError("dice: eps must be > 0, got " + std::to_string(eps));

  const size_t per_sample = static_cast<size_t>(numel / batch);
  const double inv_batch = 1.0 / static_cast<double>(batch);
  double total = 0.0;
  for (int64_t b = 0; b < batch; ++b) {
    const auto p = probs.subspan(static_cast<size_t>(b) * per_sample, per_sample);
    const auto y = targets.subspan(static_cast<size_t>(b) * per_sample, per_sample);
    double sum_yp = 0.0, sum_y = 0.0, sum_p = 0.0;
    for (size_t i = 0; i < per_sample; ++i) {
      sum_yp += static_cast<double>(y[i]) * p[i];
      sum_y += y[i];
      sum_p += p[i];
    }
    const double numerator = 2.0 * sum_yp + eps;
    const double denominator = sum_y + sum_p + eps;
    total += 1.0 - numerator / denominator;
    if (!grad.empty()) {
      // d/dp_i [1 - N/D] = (N - 2 y_i D) / D^2
      const double g = scale * inv_batch / (denominator * denominator);
      const auto gs = grad.subspan(static_cast<size_t>(b) * per_sample, per_sample);
      for (size_t i = 0; i < per_sample; ++i) {
        gs[i] += static_cast<float>(g * (numerator - 2.0 * y[i] * denominator));
      }
    }
  }
  return total * inv_batch;
}

}  // namespace emt
