#include "ops/relu/relu.h"

namespace emt {

float relu_grad(float x, float /*y*/) {
  return x > 0.0f ? 1.0f : 0.0f;
}

}  // namespace emt
