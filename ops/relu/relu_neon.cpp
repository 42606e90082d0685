#include "ops/relu/relu_neon.h"

#include "ops/core/neon_activation.h"
#include "ops/core/neon_elementwise.h"

namespace emt {

void relu_neon(const float* x, int64_t count, float* y) {
  neon::map(x, count, y, [](float32x4_t v) { return neon::relu(v); });
}

}  // namespace emt
