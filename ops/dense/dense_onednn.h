// dense on oneDNN's inner product primitives (inner_product_forward, _backward_data,
// _backward_weights).
#pragma once

#include "ops/core/variant.h"

namespace emt {

const OpVariant& dense_onednn_variant();

}  // namespace emt
