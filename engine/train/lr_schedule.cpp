#include "engine/train/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>

namespace emt {

namespace {

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("lr schedule: " + what);
}

}  // namespace

double lr_at(const LrSchedule& s, int64_t step, int64_t total_steps) {
  require(s.kind == "constant" || s.kind == "cosine" || s.kind == "step",
          "unknown kind '" + s.kind + "' (expected constant, cosine or step)");
  require(s.base_lr >= 0.0 && std::isfinite(s.base_lr), "base_lr must be finite and >= 0");
  require(s.warmup_steps >= 0, "warmup_steps must be >= 0");
  require(s.min_lr_ratio >= 0.0 && s.min_lr_ratio <= 1.0, "min_lr_ratio must be in [0, 1]");
  require(step >= 0, "step must be >= 0, got " + std::to_string(step));

  if (step < s.warmup_steps) {
    return s.base_lr * static_cast<double>(step) / static_cast<double>(s.warmup_steps);
  }
  const double min_lr = s.base_lr * s.min_lr_ratio;
  const int64_t decay_step = step - s.warmup_steps;
  if (s.kind == "cosine") {
    const int64_t decay_steps = total_steps - s.warmup_steps;
    // A run no longer than its warmup has nothing left to decay: hold the floor.
    const double progress =
        decay_steps <= 0
            ? 1.0
            : std::min(1.0, static_cast<double>(decay_step) / static_cast<double>(decay_steps));
    return min_lr + (s.base_lr - min_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
  }
  if (s.kind == "step") {
    require(s.step_every > 0, "step_every must be > 0 for kind 'step'");
    require(s.step_gamma > 0.0 && s.step_gamma <= 1.0, "step_gamma must be in (0, 1]");
    const auto decays = static_cast<double>(decay_step / s.step_every);
    return std::max(min_lr, s.base_lr * std::pow(s.step_gamma, decays));
  }
  return s.base_lr;
}

}  // namespace emt
