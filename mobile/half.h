// IEEE 754 binary16 ("half") conversion for weight storage: half the model file a phone app
// ships, at 11 bits of precision. Bit manipulation rather than _Float16, so that every compiler
// and target gives the same bytes.
#pragma once

#include <cstdint>

namespace emt::mobile {

// Rounds to the nearest half, ties to even; subnormal halves for magnitudes below 2^-14, signed
// zero below half the smallest subnormal; NaN stays NaN. Throws std::range_error (with the value)
// for a finite value that rounds beyond the largest half, 65504: a weight file must not turn a
// weight into infinity without a word.
uint16_t to_half(float value);
float from_half(uint16_t half);

}  // namespace emt::mobile
