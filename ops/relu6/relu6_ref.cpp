#include <algorithm>

#include "ops/core/elementwise.h"
#include "ops/relu6/relu6.h"

namespace emt {

float relu6_ref(float x) {
  return std::min(std::max(x, 0.0f), 6.0f);
}

const OpSchema& relu6_schema() {
  static const OpSchema schema{
      "relu6", "min(max(x, 0), 6)",
      1,       1,
      {},      [](const Attrs&) {
        return make_elementwise_op({relu6_ref, relu6_grad}); }};
  return schema;
}

}  // namespace emt
