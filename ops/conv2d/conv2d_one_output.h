// Convolutions with a single output channel (groups 1), such as EMT-Net's 3x3 mask logit over
// 32 channels. oneDNN pads the output channel to a block of 16 and so does 16x the work; these
// kernels loop over contiguous output-row pixels instead, with AVX-512/AVX2 clones on x86.
#pragma once

#include "ops/conv2d/conv2d.h"

namespace emt {

// True when g has one output channel and one group, positive kernel and stride, non-negative
// padding, and ho/wo as conv2d computes them from it. Any channel count, kernel, stride and
// padding (TF SAME's asymmetric one included); stride 1 takes the vectorised paths.
bool one_output_conv_fits(const ConvGeometry& g);

// dst [n, 1, ho, wo] = conv(src [n, cin, h, w], weight [1, cin, kernel, kernel]) + bias
// (bias [1], may be null). Overwrites dst. Parallel over n * ho output rows.
void one_output_conv_forward(const ConvGeometry& g, const float* src, const float* weight,
                             const float* bias, float* dst);

// Adds the gradients of sum(diff_dst * dst) to diff_src [n, cin, h, w], diff_weight
// [1, cin, kernel, kernel] and diff_bias [1]; null ones are skipped. The weight and bias
// gradients are summed per fixed block of rows and the blocks reduced in order, so the result
// does not depend on the thread count.
void one_output_conv_backward(const ConvGeometry& g, const float* src, const float* weight,
                              const float* diff_dst, float* diff_src, float* diff_weight,
                              float* diff_bias);

}  // namespace emt
