// relu and relu6 on four lanes with relu_ref's and relu6_ref's exact formulas, for the activation
// ops and the convolutions' fused activations alike: both then agree with the reference to the
// bit, NaN and -0 included (vmaxq_f32 would not: it propagates NaN and orders -0 below +0).
#pragma once

#include "ops/core/neon.h"

namespace emt::neon {

// x > 0 ? x : +0
inline float32x4_t relu(float32x4_t x) {
  const uint32x4_t positive = vcgtq_f32(x, vdupq_n_f32(0.0f));
  return vreinterpretq_f32_u32(vandq_u32(positive, vreinterpretq_u32_f32(x)));
}

// std::min(std::max(x, 0), 6): std::max keeps x unless x < 0, std::min keeps that unless 6 < it.
inline float32x4_t relu6(float32x4_t x) {
  const float32x4_t zero = vdupq_n_f32(0.0f), six = vdupq_n_f32(6.0f);
  const float32x4_t low_clipped = vbslq_f32(vcltq_f32(x, zero), zero, x);
  return vbslq_f32(vcltq_f32(six, low_clipped), six, low_clipped);
}

}  // namespace emt::neon
