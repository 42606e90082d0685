// The pointwise GEMM: R rows by V vectors of four columns in registers, 16 accumulators at most,
// so that each loaded weight vector and source vector feeds several multiply-adds.
#include <algorithm>

#include "ops/conv2d/conv2d_neon_kernels.h"
#include "ops/core/neon_tiling.h"

namespace emt::conv_neon {
namespace {

// Source columns per pass over the rows: depth x this many floats (64 KiB) stay in cache while
// every row tile reads them, instead of streaming a large plane once per tile of rows.
constexpr int64_t kPassFloats = 16384;

template <int R, int V, bool kDepthContiguous>
void pointwise_tile(const Pointwise& p, int64_t row, int64_t col) {
  float32x4_t acc[R][V];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    const float32x4_t init = vdupq_n_f32(p.bias ? p.bias[row + r] : 0.0f);
#pragma GCC unroll 16
    for (int v = 0; v < V; ++v) acc[r][v] = init;
  }
  const int64_t plane = p.plane, depth = p.depth;
  const int64_t weight_row = p.weight_row, weight_depth = p.weight_depth;
  const float* weight = p.weight + row * weight_row;
  const float* src = p.src + col;  // at source row k
  const auto load_src = [&](const float* s, float32x4_t(&x)[V]) {
#pragma GCC unroll 16
    for (int v = 0; v < V; ++v) x[v] = vld1q_f32(s + 4 * v);
  };
  int64_t k = 0;
  if constexpr (kDepthContiguous) {
    // Four depth steps per weight load: lane l of row r's vector weighs source row k + l.
    for (; k + 4 <= depth; k += 4, src += 4 * plane) {
      float32x4_t w[R];
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) w[r] = vld1q_f32(weight + r * weight_row + k);
      neon::unroll<4>([&](auto lane) {
        constexpr int kLane = decltype(lane)::value;
        float32x4_t x[V];
        load_src(src + kLane * plane, x);
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
          for (int v = 0; v < V; ++v) acc[r][v] = vfmaq_laneq_f32(acc[r][v], x[v], w[r], kLane);
      });
    }
    for (; k < depth; ++k, src += plane) {
      float32x4_t x[V];
      load_src(src, x);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const float w = weight[r * weight_row + k];
#pragma GCC unroll 16
        for (int v = 0; v < V; ++v) acc[r][v] = vfmaq_n_f32(acc[r][v], x[v], w);
      }
    }
  } else {
    // Rows contiguous (weight_row 1): each depth step's R weights are one run.
    for (; k < depth; ++k, src += plane) {
      float32x4_t x[V];
      load_src(src, x);
      multiply_add_rows<R, V>(acc, x, weight + k * weight_depth);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int v = 0; v < V; ++v)
      vst1q_f32(p.dst + (row + r) * plane + col + 4 * v, activate(p.act, acc[r][v]));
}

template <bool kDepthContiguous>
void pointwise_tiles(const Pointwise& p) {
  const int64_t pass = std::max<int64_t>(8, kPassFloats / std::max<int64_t>(p.depth, 1) / 8 * 8);
  for (int64_t begin = 0; begin < p.plane;) {
    // A remainder too short for a tile joins the pass before it.
    const int64_t end = p.plane - (begin + pass) < 8 ? p.plane : begin + pass;
    neon::for_each_tile<8, 4, 1>(p.rows, [&]<int R>(int64_t row) {
      neon::for_each_tile<8, 4>(end - begin, [&]<int L>(int64_t col) {
        pointwise_tile<R, L / 4, kDepthContiguous>(p, row, begin + col);
      });
    });
    begin = end;
  }
}

// Planes narrower than a vector (MobileNet's last stages on small inputs): one sum per output.
void pointwise_scalar(const Pointwise& p) {
  for (int64_t m = 0; m < p.rows; ++m)
    for (int64_t col = 0; col < p.plane; ++col) {
      float sum = p.bias ? p.bias[m] : 0.0f;
      for (int64_t k = 0; k < p.depth; ++k)
        sum += p.weight[m * p.weight_row + k * p.weight_depth] * p.src[k * p.plane + col];
      apply_conv_activation(p.act, &sum, 1);
      p.dst[m * p.plane + col] = sum;
    }
}

}  // namespace

void pointwise(const Pointwise& p) {
  if (p.plane < 4) {
    pointwise_scalar(p);
  } else if (p.weight_depth == 1) {
    pointwise_tiles<true>(p);
  } else {
    pointwise_tiles<false>(p);
  }
}

}  // namespace emt::conv_neon
