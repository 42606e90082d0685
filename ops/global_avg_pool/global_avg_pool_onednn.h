// global_avg_pool on oneDNN's pooling_forward (average over the whole plane); its backward is a
// broadcast binary_add.
#pragma once

#include "ops/core/variant.h"

namespace emt {

const OpVariant& global_avg_pool_onednn_variant();

}  // namespace emt
