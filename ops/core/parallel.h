// ops/ depends on the standard library only, so kernels parallelise through a hook the host
// installs (the desktop engine installs TBB; mobile and tests may leave the serial default).
#pragma once

#include <cstdint>
#include <functional>

namespace emt {

using RangeBody = std::function<void(int64_t begin, int64_t end)>;
using ParallelForFn = void (*)(int64_t count, const RangeBody& body);

// Runs body over [0, count) split into disjoint ranges; each index is visited exactly once.
void parallel_for(int64_t count, const RangeBody& body);
void set_parallel_for(ParallelForFn fn);

}  // namespace emt
