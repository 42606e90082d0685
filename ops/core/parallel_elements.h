// Flat loops over every element of a tensor (add, dropout): one parallel task per element
// would drown the work in scheduling overhead, so elements are handed out in large chunks.
#pragma once

#include <algorithm>
#include <cstdint>

#include "ops/core/parallel.h"

namespace emt {

inline constexpr int64_t kElementsPerTask = 1 << 14;

// Calls fn(i) exactly once for every i in [0, n).
template <typename Fn>
void parallel_for_elements(int64_t n, Fn&& fn) {
  const int64_t chunks = (n + kElementsPerTask - 1) / kElementsPerTask;
  parallel_for(chunks, [&](int64_t begin, int64_t end) {
    const int64_t stop = std::min(n, end * kElementsPerTask);
    for (int64_t i = begin * kElementsPerTask; i < stop; ++i) fn(i);
  });
}

}  // namespace emt
