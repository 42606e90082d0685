// Loop shapes shared by the NEON kernels: register tiles over an output axis, and lane indices
// as compile-time constants (the *_lane* / *_laneq* intrinsics take no runtime index).
//
// The kernels put `#pragma GCC unroll 16` (which Clang honours too) before the loops over a
// register tile's rows and vectors: only once every index into an accumulator array is a
// constant does the compiler keep the array in registers rather than store it on every pass.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>

namespace emt::neon {

// Covers [0, count) with tiles of the largest Size in Sizes... not above count, calling
// f.template operator()<Size>(start) for each: starts 0, Size, 2 Size, ..., the last tile moved
// back to end at count. It then rewrites a few outputs the previous tile already wrote instead of
// needing a narrower tail kernel, so f must write outputs that no input aliases. The last Size
// should be 1, or counts below it are not covered.
template <int Size, int... Sizes, class F>
void for_each_tile(int64_t count, F&& f) {
  if constexpr (sizeof...(Sizes) > 0) {
    if (count < Size) {
      for_each_tile<Sizes...>(count, f);
      return;
    }
  }
  if (count < Size) return;
  for (int64_t start = 0; start < count; start += Size)
    f.template operator()<Size>(std::min(start, count - Size));
}

// f(std::integral_constant<int, 0>{}), ..., f(std::integral_constant<int, N - 1>{}).
template <int N, class F>
inline void unroll(F&& f) {
  [&]<int... I>(std::integer_sequence<int, I...>) { (f(std::integral_constant<int, I>{}), ...); }
  (std::make_integer_sequence<int, N>{});
}

}  // namespace emt::neon
