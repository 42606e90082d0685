#include "ops/relu6/relu6_neon.h"

#include "ops/core/neon_activation.h"
#include "ops/core/neon_elementwise.h"

namespace emt {

void relu6_neon(const float* x, int64_t count, float* y) {
  neon::map(x, count, y, [](float32x4_t v) { return neon::relu6(v); });
}

}  // namespace emt
