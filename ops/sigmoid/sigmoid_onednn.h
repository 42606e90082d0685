// sigmoid on oneDNN's eltwise_logistic (see ops/core/onednn_eltwise.h).
#pragma once

#include "ops/core/variant.h"

namespace emt {

const OpVariant& sigmoid_onednn_variant();

}  // namespace emt
