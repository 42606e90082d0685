// conv_transpose2d on oneDNN's deconvolution primitives, through the machinery of
// conv2d_onednn.h.
#pragma once

#include "ops/core/variant.h"

namespace emt {

const OpVariant& conv_transpose2d_onednn_variant();

}  // namespace emt
