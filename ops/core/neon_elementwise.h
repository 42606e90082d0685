// The loop of every elementwise NEON kernel, written once: four lanes at a time, and the last
// count % 4 elements through the same lane function on a zero-padded copy, so the tail gets the
// body's arithmetic and nothing outside the arrays is read or written. Each element is read
// before it is written, so the output may be an input (in place).
#pragma once

#include <algorithm>
#include <cstdint>

#include "ops/core/neon.h"

namespace emt::neon {

// y[i] = f(x[i]) for i < count, f taking and returning float32x4_t.
template <class F>
void map(const float* x, int64_t count, float* y, F f) {
  int64_t i = 0;
  for (; i + 4 <= count; i += 4) vst1q_f32(y + i, f(vld1q_f32(x + i)));
  if (i == count) return;
  float tail[4] = {};
  std::copy(x + i, x + count, tail);
  vst1q_f32(tail, f(vld1q_f32(tail)));
  std::copy(tail, tail + (count - i), y + i);
}

// y[i] = f(a[i], b[i]) for i < count.
template <class F>
void map(const float* a, const float* b, int64_t count, float* y, F f) {
  int64_t i = 0;
  for (; i + 4 <= count; i += 4) vst1q_f32(y + i, f(vld1q_f32(a + i), vld1q_f32(b + i)));
  if (i == count) return;
  float tail_a[4] = {}, tail_b[4] = {};
  std::copy(a + i, a + count, tail_a);
  std::copy(b + i, b + count, tail_b);
  vst1q_f32(tail_a, f(vld1q_f32(tail_a), vld1q_f32(tail_b)));
  std::copy(tail_a, tail_a + (count - i), y + i);
}

}  // namespace emt::neon
