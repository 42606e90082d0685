// relu(x) = max(x, 0). The derivative at exactly 0 is taken as 0.
#pragma once

#include "ops/core/op.h"

namespace emt {

const OpSchema& relu_schema();
float relu_ref(float x);
float relu_grad(float x, float y);

}  // namespace emt
