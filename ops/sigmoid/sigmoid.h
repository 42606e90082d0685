// sigmoid(x) = 1 / (1 + exp(-x)), evaluated so that no intermediate overflows for any finite x.
#pragma once

#include "ops/core/op.h"

namespace emt {

const OpSchema& sigmoid_schema();
float sigmoid_ref(float x);
float sigmoid_grad(float x, float y);

}  // namespace emt
