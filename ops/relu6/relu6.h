// relu6(x) = min(max(x, 0), 6), MobileNet's activation. The derivative at the kinks 0 and 6 is
// taken as 0.
#pragma once

#include "ops/core/op.h"

namespace emt {

const OpSchema& relu6_schema();
float relu6_ref(float x);
float relu6_grad(float x, float y);

}  // namespace emt
