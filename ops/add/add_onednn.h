// add on oneDNN's binary_add primitive.
#pragma once

#include "ops/core/variant.h"

namespace emt {

const OpVariant& add_onednn_variant();

}  // namespace emt
