// Convolution cases for the NEON conv2d and conv_transpose2d tests: random geometries over the
// awkward sizes, EMT-Net's layers, and the check of one case against the reference kernel
// (conv2d_gather, or conv2d_scatter for the transposed direction).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ops/conv2d/conv2d.h"

namespace emt::test {

enum class ConvDirection { kForward, kTransposed };

struct ConvCase {
  ConvGeometry g;
  bool bias = true;
  ConvActivation act = ConvActivation::kNone;
};

// The conv2d geometry with these sizes and padding: ho and wo follow from them.
ConvGeometry conv_geometry(int64_t n, int64_t cin, int64_t h, int64_t w, int64_t cout,
                           int64_t kernel, int64_t stride, int64_t groups, ConvPadding padding);

// count cases drawn from seed: batch 1 or 3; dense, grouped and depthwise channels; sizes 1 to 33
// on and off the 4-, 8- and 16-lane steps (and channels past one pass of the packed filters);
// kernels 1 to 5, strides 1 to 3; symmetric, TF SAME and arbitrary asymmetric padding; with and
// without bias, every activation.
std::vector<ConvCase> random_conv_cases(uint32_t seed, int count);

// "conv2d_neon n1c3h9w9 o8 k3 s2 g1 pad[0,0,1,1] bias=1 relu": one line that reruns the case.
std::string describe(ConvDirection direction, const ConvCase& c);

// Runs the NEON kernel of direction on random data and compares it with the reference kernel,
// within 1e-5 * sqrt(sums' length) of the output's scale; an element left unwritten or written
// out of bounds fails too.
void check_conv_case(ConvDirection direction, const ConvCase& c, uint32_t seed);

}  // namespace emt::test
