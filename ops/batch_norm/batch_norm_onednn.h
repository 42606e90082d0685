// batch_norm on oneDNN's batch_normalization primitives: forward_training (batch statistics),
// forward_inference with the running statistics (use_global_stats), and backward.
#pragma once

#include "ops/core/variant.h"

namespace emt {

const OpVariant& batch_norm_onednn_variant();

}  // namespace emt
