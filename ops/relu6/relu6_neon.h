// relu6 on NEON (SIMDe elsewhere).
#pragma once

#include <cstdint>

namespace emt {

// y[i] = relu6_ref(x[i]) for i < count, bit for bit (NaN and -0 included). y may be x (in place).
void relu6_neon(const float* x, int64_t count, float* y);

}  // namespace emt
