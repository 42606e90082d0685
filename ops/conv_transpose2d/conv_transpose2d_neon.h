// conv_transpose2d on NEON (SIMDe elsewhere): the mobile runtime's decoder upsampling.
// Single-threaded and free of heap allocation.
// Takes at most 12 KiB of stack (packed filters).
#pragma once

#include "ops/conv2d/conv2d.h"

namespace emt {

// g describes the conv2d being transposed (as ConvTranspose2dOp builds it): input is that conv's
// output [n, g.cout, g.ho, g.wo], output its input [n, g.cin, g.h, g.w], weight
// [g.cout, g.cin / groups, k, k]. output = act(conv^T(input, weight) + bias), exactly what
// conv2d_scatter(g, input, weight, bias, output, false, act) computes, up to float rounding of the
// sums. bias [g.cin] may be null. output must not overlap input.
void conv_transpose2d_neon(const ConvGeometry& g, const float* input, const float* weight,
                           const float* bias, ConvActivation act, float* output);

}  // namespace emt
