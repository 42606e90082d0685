// global_avg_pool on NEON (SIMDe elsewhere).
#pragma once

#include <cstdint>

namespace emt {

// y [n, channels] = the mean of each plane of x [n, channels, plane]. Sums in float (the
// reference sums in double): equal to it within a few float roundings of the plane's scale.
void global_avg_pool_neon(const float* x, int64_t n, int64_t channels, int64_t plane, float* y);

}  // namespace emt
