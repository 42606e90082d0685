#include "ops/global_avg_pool/global_avg_pool_neon.h"

#include "ops/core/neon.h"

namespace emt {
namespace {

// Sixteen running sums in four independent vectors: the adds pipeline, and each sum grows a
// sixteenth as long as a single one would, which keeps the rounding close to the reference's
// double sum.
float plane_sum(const float* x, int64_t plane) {
  float32x4_t sums[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f),
                         vdupq_n_f32(0.0f)};
  int64_t i = 0;
  for (; i + 16 <= plane; i += 16)
    for (int q = 0; q < 4; ++q) sums[q] = vaddq_f32(sums[q], vld1q_f32(x + i + 4 * q));
  for (; i + 4 <= plane; i += 4) sums[0] = vaddq_f32(sums[0], vld1q_f32(x + i));
  float sum = vaddvq_f32(vaddq_f32(vaddq_f32(sums[0], sums[1]), vaddq_f32(sums[2], sums[3])));
  for (; i < plane; ++i) sum += x[i];
  return sum;
}

}  // namespace

void global_avg_pool_neon(const float* x, int64_t n, int64_t channels, int64_t plane, float* y) {
  for (int64_t p = 0; p < n * channels; ++p)
    y[p] = plane_sum(x + p * plane, plane) / static_cast<float>(plane);
}

}  // namespace emt
