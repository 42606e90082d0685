// Convolutions with a single output channel (groups 1), such as EMT-Net's 3x3 mask logit over
// 32 channels. oneDNN pads the output channel to a block of 16 and so does 16x the work; these
// kernels loop over contiguous output-row pixels instead, with AVX-512/AVX2 clones on x86.
//
// src and diff_src may be plain or channel-blocked (nChw16c), so that the conv can read an
// activation the oneDNN plan keeps blocked, and add to its blocked gradient, without a reorder
// each way (which costs as much as the conv). dst and diff_dst are always plain [n, 1, ho, wo]:
// a single channel is never blocked.
#pragma once

#include "ops/conv2d/conv2d.h"
#include "ops/core/tensor.h"

namespace emt {

// True when g has one output channel and one group, positive kernel and stride, non-negative
// padding, and ho/wo as conv2d computes them from it; with src_layout blocked, also whole
// channel blocks. Any channel count, kernel, stride and padding (TF SAME's asymmetric one
// included); plain src takes the vectorised paths at stride 1, blocked src at any stride.
bool one_output_conv_fits(const ConvGeometry& g, Layout src_layout = Layout::kPlain);

// dst [n, 1, ho, wo] = conv(src [n, cin, h, w] in src_layout, weight [1, cin, kernel, kernel])
// + bias (bias [1], may be null). Overwrites dst. Parallel over n * ho output rows.
void one_output_conv_forward(const ConvGeometry& g, const float* src, const float* weight,
                             const float* bias, float* dst, Layout src_layout = Layout::kPlain);

// Adds the gradients of sum(diff_dst * dst) to diff_src [n, cin, h, w] (in src_layout, as src),
// diff_weight [1, cin, kernel, kernel] and diff_bias [1]; null ones are skipped. The weight and
// bias gradients are summed per fixed block of rows and the blocks reduced in order, so the
// result does not depend on the thread count.
void one_output_conv_backward(const ConvGeometry& g, const float* src, const float* weight,
                              const float* diff_dst, float* diff_src, float* diff_weight,
                              float* diff_bias, Layout src_layout = Layout::kPlain);

}  // namespace emt
