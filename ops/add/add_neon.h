// add on NEON (SIMDe elsewhere): the residual joins of the mobile runtime.
#pragma once

#include <cstdint>

namespace emt {

// y[i] = a[i] + b[i] for i < count. y may be a or b (in place).
void add_neon(const float* a, const float* b, int64_t count, float* y);

}  // namespace emt
