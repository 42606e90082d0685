#include "ops/sigmoid/sigmoid_neon.h"

#include "ops/core/neon_elementwise.h"

namespace emt {
namespace {

// Beyond this |x| the result saturates. exp(-88) is already below FLT_MIN, and 1 / (1 + exp(-88))
// rounds to 1 long before.
constexpr float kSaturation = 88.0f;

// exp(t) for t in [-88, 0] (Cephes expf): t = n ln2 + r with |r| <= ln2 / 2, exp(r) by a
// degree-7 polynomial, then the 2^n scale. n reaches -127, below the smallest normal exponent,
// so the scale is applied as two normal halves: the first product is exact and only the second
// rounds, which keeps the subnormal results near -88 correctly rounded.
float32x4_t exp_nonpositive(float32x4_t t) {
  constexpr float kLog2e = 1.44269504088896341f;
  // -ln 2 split so that n * kMinusLn2High is exact for |n| < 2^9.
  constexpr float kMinusLn2High = -0.693359375f, kMinusLn2Low = 2.12194440e-4f;
  const float32x4_t n = vrndnq_f32(vmulq_n_f32(t, kLog2e));
  float32x4_t r = vfmaq_f32(t, n, vdupq_n_f32(kMinusLn2High));
  r = vfmaq_f32(r, n, vdupq_n_f32(kMinusLn2Low));

  float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
  for (float c :
       {1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f})
    p = vfmaq_f32(vdupq_n_f32(c), p, r);
  p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), p, vmulq_f32(r, r));

  const int32x4_t exponent = vcvtq_s32_f32(n);
  const int32x4_t half = vshrq_n_s32(exponent, 1);
  const auto power_of_two = [](int32x4_t e) {
    return vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(e, vdupq_n_s32(127)), 23));
  };
  return vmulq_f32(vmulq_f32(p, power_of_two(half)), power_of_two(vsubq_s32(exponent, half)));
}

// numerator / denominator for denominators in [1, 2]: the reciprocal estimate refined by two
// Newton steps, then one correction of the quotient by its residual, which makes 1 / 1 exactly 1.
float32x4_t divide(float32x4_t numerator, float32x4_t denominator) {
  float32x4_t reciprocal = vrecpeq_f32(denominator);
  reciprocal = vmulq_f32(reciprocal, vrecpsq_f32(denominator, reciprocal));
  reciprocal = vmulq_f32(reciprocal, vrecpsq_f32(denominator, reciprocal));
  const float32x4_t quotient = vmulq_f32(numerator, reciprocal);
  const float32x4_t residual = vfmaq_f32(numerator, vnegq_f32(quotient), denominator);
  return vfmaq_f32(quotient, residual, reciprocal);
}

// sigmoid_ref's formula: with e = exp(-|x|) in (0, 1], 1 / (1 + e) for x >= 0 and e / (1 + e)
// below, so nothing overflows and tiny results keep their relative precision.
float32x4_t sigmoid(float32x4_t x) {
  const float32x4_t one = vdupq_n_f32(1.0f);
  const float32x4_t t = vmaxq_f32(vnegq_f32(vabsq_f32(x)), vdupq_n_f32(-kSaturation));
  const float32x4_t e = exp_nonpositive(t);
  const float32x4_t y =
      divide(vbslq_f32(vcgeq_f32(x, vdupq_n_f32(0.0f)), one, e), vaddq_f32(one, e));
  const float32x4_t high_saturated = vbslq_f32(vcgtq_f32(x, vdupq_n_f32(kSaturation)), one, y);
  return vbslq_f32(vcltq_f32(x, vdupq_n_f32(-kSaturation)), vdupq_n_f32(0.0f), high_saturated);
}

}  // namespace

void sigmoid_neon(const float* x, int64_t count, float* y) { neon::map(x, count, y, sigmoid); }

}  // namespace emt
