#include "ops/add/add_neon.h"

#include "ops/core/neon_elementwise.h"

namespace emt {

void add_neon(const float* a, const float* b, int64_t count, float* y) {
  neon::map(a, b, count, y, [](float32x4_t u, float32x4_t v) { return vaddq_f32(u, v); });
}

}  // namespace emt
