#include <cmath>

#include "ops/core/elementwise.h"
#include "ops/sigmoid/sigmoid.h"

namespace emt {

float sigmoid_ref(float x) {
  // exp(-|x|) lies in (0, 1], so neither branch can overflow; the negative branch keeps full
  // relative precision for tiny outputs instead of computing 1 - (something close to 1).
  const float e = std::exp(-std::abs(x));
  return x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
}

const OpSchema& sigmoid_schema() {
  static const OpSchema schema{
      "sigmoid", "1 / (1 + exp(-x))",
      1,         1,
      {},        [](const Attrs&) {
        return make_elementwise_op({sigmoid_ref, sigmoid_grad}); }};
  return schema;
}

}  // namespace emt
