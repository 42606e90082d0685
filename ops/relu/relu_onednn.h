// relu on oneDNN's eltwise_relu (see ops/core/onednn_eltwise.h).
#pragma once

#include "ops/core/variant.h"

namespace emt {

const OpVariant& relu_onednn_variant();

}  // namespace emt
