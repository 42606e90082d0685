#include "ops/dense/dense_neon.h"

#include "ops/core/neon.h"
#include "ops/core/neon_tiling.h"

namespace emt {
namespace {

// y[r] = bias[r] + x . weight row r for the R rows from weight: one load of x feeds R rows.
template <int R>
void dense_rows(const float* x, const float* weight, const float* bias, int64_t in, float* y) {
  float32x4_t sums[R];
  for (int r = 0; r < R; ++r) sums[r] = vdupq_n_f32(0.0f);
  int64_t i = 0;
  for (; i + 4 <= in; i += 4) {
    const float32x4_t xs = vld1q_f32(x + i);
    for (int r = 0; r < R; ++r) sums[r] = vfmaq_f32(sums[r], xs, vld1q_f32(weight + r * in + i));
  }
  for (int r = 0; r < R; ++r) {
    float sum = vaddvq_f32(sums[r]);
    for (int64_t j = i; j < in; ++j) sum += x[j] * weight[r * in + j];
    y[r] = (bias ? bias[r] : 0.0f) + sum;
  }
}

}  // namespace

void dense_neon(const float* x, const float* weight, const float* bias, int64_t n, int64_t in,
                int64_t out, float* y) {
  for (int64_t b = 0; b < n; ++b)
    neon::for_each_tile<4, 1>(out, [&]<int R>(int64_t o) {
      dense_rows<R>(x + b * in, weight + o * in, bias ? bias + o : nullptr, in, y + b * out + o);
    });
}

}  // namespace emt
