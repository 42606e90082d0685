// dense on NEON (SIMDe elsewhere): the classifier head of the mobile runtime.
#pragma once

#include <cstdint>

namespace emt {

// y [n, out] = x [n, in] * weight [out, in]^T + bias [out] (bias may be null), as DenseOp
// computes it, up to float rounding of the sums. y must not overlap x.
void dense_neon(const float* x, const float* weight, const float* bias, int64_t n, int64_t in,
                int64_t out, float* y);

}  // namespace emt
