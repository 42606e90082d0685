// The NEON kernels conv2d_neon and conv_transpose2d_neon share, so that both directions run the
// same arithmetic: a register-blocked GEMM for pointwise convolutions, and a direct convolution
// for every other geometry. Single-threaded, no heap allocation, NCHW float32.
#pragma once

#include <algorithm>
#include <cstdint>

#include "ops/conv2d/conv2d.h"
#include "ops/core/neon.h"
#include "ops/core/neon_activation.h"
#include "ops/core/neon_tiling.h"

namespace emt::conv_neon {

// The fused activation on four lanes, with apply_conv_activation's formulas.
inline float32x4_t activate(ConvActivation act, float32x4_t x) {
  switch (act) {
    case ConvActivation::kRelu:
      return neon::relu(x);
    case ConvActivation::kRelu6:
      return neon::relu6(x);
    case ConvActivation::kNone:
      break;
  }
  return x;
}

// acc[r][v] += x[v] * w[r] for r < R and v < V, the R weights contiguous at w: one vector load
// and by-lane multiply-adds per four of them.
template <int R, int V>
inline void multiply_add_rows(float32x4_t (&acc)[R][V], const float32x4_t (&x)[V], const float* w) {
  if constexpr (R % 4 == 0) {
    float32x4_t w4[R / 4];
#pragma GCC unroll 16
    for (int q = 0; q < R / 4; ++q) w4[q] = vld1q_f32(w + 4 * q);
    neon::unroll<R>([&](auto r) {
      constexpr int kRow = decltype(r)::value;
#pragma GCC unroll 16
      for (int v = 0; v < V; ++v)
        acc[kRow][v] = vfmaq_laneq_f32(acc[kRow][v], x[v], w4[kRow / 4], kRow % 4);
    });
  } else {
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const float w_r = w[r];
#pragma GCC unroll 16
      for (int v = 0; v < V; ++v) acc[r][v] = vfmaq_n_f32(acc[r][v], x[v], w_r);
    }
  }
}

// dst [rows, plane] = act(bias + A [rows, depth] * src [depth, plane]), the rows of src and dst
// plane floats apart, A(m, k) = weight[m * weight_row + k * weight_depth] with one of the two
// strides 1 (conv2d's weight is A, the transposed conv's its transpose). bias may be null.
struct Pointwise {
  int64_t rows = 0, depth = 0, plane = 0;
  const float* weight = nullptr;
  int64_t weight_row = 0, weight_depth = 0;
  const float* src = nullptr;
  const float* bias = nullptr;
  ConvActivation act = ConvActivation::kNone;
  float* dst = nullptr;
};
void pointwise(const Pointwise& p);

// The taps of one destination position along one axis: `count` of them, the first reading
// source position `src` through filter position `tap`, each next one `src_step` and `tap_step`
// further.
struct AxisTaps {
  int64_t count = 0, src = 0, src_step = 1, tap = 0, tap_step = 1;
};

// One spatial axis of a convolution, seen from the destination. Forward (conv2d), destination o
// reads source o * stride - pad + t through tap t. Transposed, source o spreads to destination
// o * stride - pad + t, so destination q gathers the sources that land on it. Taps reading
// outside the source drop out (zero padding).
struct ConvAxis {
  int64_t src_size = 1, dst_size = 1, kernel = 1, stride = 1, pad = 0;
  bool transposed = false;

  AxisTaps taps(int64_t dst) const;

  // Destinations that share their taps' filter positions and read sources a fixed step apart
  // form a phase: every destination forward; destinations phase + i * stride when transposed.
  int64_t phases() const { return transposed ? std::min(stride, dst_size) : 1; }
  int64_t phase_dst_step() const { return transposed ? stride : 1; }
  int64_t phase_src_step() const { return transposed ? 1 : stride; }
  int64_t phase_size(int64_t phase) const {
    return (dst_size - phase + phase_dst_step() - 1) / phase_dst_step();
  }
  // How many taps a destination of the phase has when no padding clips them.
  int64_t full_taps(int64_t phase) const;
};

// dst [batch, groups * dst_channels, rows.dst_size, cols.dst_size] = act(bias + the convolution
// of src [batch, groups * src_channels, rows.src_size, cols.src_size]): destination channel d
// of group g reads source channel s of g through the filter at weight + g * src_channels *
// dst_channels * kernel^2 + d * weight_dst + s * weight_src, laid out [kernel, kernel].
struct Direct {
  int64_t batch = 1, groups = 1, src_channels = 1, dst_channels = 1;
  ConvAxis rows, cols;
  int64_t weight_dst = 0, weight_src = 0;
};
void direct(const Direct& d, const float* src, const float* weight, const float* bias,
            ConvActivation act, float* dst);

}  // namespace emt::conv_neon
