#include "ops/sigmoid/sigmoid.h"

namespace emt {

// Through the output: no second exp, and it cannot overflow where the input is huge.
float sigmoid_grad(float /*x*/, float y) {
  return y * (1.0f - y);
}

}  // namespace emt
