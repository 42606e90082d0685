// sigmoid on NEON (SIMDe elsewhere): the output probabilities of the mobile runtime.
#pragma once

#include <cstdint>

namespace emt {

// y[i] = sigmoid(x[i]) for i < count, within 1e-6 relative of sigmoid_ref for |x| <= 88 and
// exactly 0 (x < -88) or 1 (x > 88) beyond; never NaN for finite x. y may be x (in place).
void sigmoid_neon(const float* x, int64_t count, float* y);

}  // namespace emt
