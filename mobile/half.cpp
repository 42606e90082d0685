#include "mobile/half.h"

#include <bit>
#include <cmath>
#include <stdexcept>
#include <string>

namespace emt::mobile {

uint16_t to_half(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const auto sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);   // NaN
  if (magnitude == 0x7f800000u) return static_cast<uint16_t>(sign | 0x7c00u);  // infinity
  // Below 2^-14 the half is subnormal: its unit is 2^-24. Rounding |value| / 2^-24 to an integer
  // (nearbyint: ties to even in the default rounding mode) gives its bits directly, and the
  // scaling by a power of two is exact.
  if (magnitude < 0x38800000u) {
    const float units = std::nearbyint(std::abs(value) * 16777216.0f);
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(units));
  }
  // Normal: drop 13 mantissa bits with round to nearest, ties to even; a carry out of the
  // mantissa correctly bumps the exponent.
  const uint32_t rebased = magnitude - (uint32_t{112} << 23);  // float bias 127 -> half bias 15
  const uint32_t rounded = (rebased + 0x0fffu + ((rebased >> 13) & 1u)) >> 13;
  if (rounded >= 0x7c00u)
    throw std::range_error("weight " + std::to_string(value) +
                           " is beyond the largest half-precision value, 65504");
  return static_cast<uint16_t>(sign | rounded);
}

float from_half(uint16_t half) {
  const uint32_t sign = uint32_t{half & 0x8000u} << 16;
  const uint32_t exponent = (half >> 10) & 0x1fu, mantissa = half & 0x3ffu;
  if (exponent == 0) {  // zero or subnormal: mantissa units of 2^-24, exact in float
    const float magnitude = static_cast<float>(mantissa) / 16777216.0f;
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

}  // namespace emt::mobile
