// Learning rate as a pure function of the step, so a resumed run needs only the step count.
#pragma once

#include <cstdint>
#include <string>

namespace emt {

struct LrSchedule {
  std::string kind = "cosine";  // constant | cosine | step
  double base_lr = 1e-3;
  // Linear ramp from 0 (step 0) to base_lr (step warmup_steps); the decay starts after it.
  int64_t warmup_steps = 0;
  // Floor of the decay, as a fraction of base_lr: cosine ends there, step never goes below it.
  double min_lr_ratio = 0.0;
  int64_t step_every = 0;  // step: multiply by step_gamma every step_every steps after warmup
  double step_gamma = 0.1;
};

// The rate for optimizer step `step` (0-based) of a run of total_steps. Only cosine reads
// total_steps, and holds its floor past it. Throws std::invalid_argument on an unknown kind or
// invalid fields.
double lr_at(const LrSchedule& schedule, int64_t step, int64_t total_steps);

}  // namespace emt
