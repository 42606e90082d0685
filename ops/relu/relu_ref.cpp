#include "ops/core/elementwise.h"
#include "ops/relu/relu.h"

namespace emt {

float relu_ref(float x) {
  return x > 0.0f ? x : 0.0f;
}

const OpSchema& relu_schema() {
  static const OpSchema schema{
      "relu", "max(x, 0)", 1,
      1,      {},          [](const Attrs&) {
        return make_elementwise_op({relu_ref, relu_grad}); }};
  return schema;
}

}  // namespace emt
