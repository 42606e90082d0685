// Liveness-based buffer assignment: one arena; two values share bytes when their lifetimes
// (first definition to last use) do not overlap.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/compiler/program.h"

namespace emt {

enum class Lifetime {
  kInference,  // a value dies after its last reader, unless an output or objective reads it
  kTraining,   // every value lives until backward has used it: no reuse among activations
};

struct MemoryPlan {
  std::vector<int64_t> offsets;  // in floats, per value
  int64_t arena_floats = 0;
  int64_t naive_floats = 0;  // one buffer per value, for comparison
};

MemoryPlan plan_memory(const Program& program, Lifetime lifetime);

}  // namespace emt
