// conv2d on NEON (SIMDe elsewhere): the mobile runtime's convolution. Single-threaded and free of
// heap allocation, for a runtime that owns its memory in a static arena.
// Takes at most 24 KiB of stack (packed filters, a zero-padded depthwise plane).
#pragma once

#include "ops/conv2d/conv2d.h"

namespace emt {

// y [n, cout, ho, wo] = act(conv(x [n, cin, h, w], weight [cout, cin / groups, k, k]) + bias),
// exactly what conv2d_gather(g, x, weight, bias, y, false, act) computes, up to float rounding
// of the sums. bias [cout] may be null. y must not overlap x.
void conv2d_neon(const ConvGeometry& g, const float* x, const float* weight, const float* bias,
                 ConvActivation act, float* y);

}  // namespace emt
