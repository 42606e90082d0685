// relu6 on oneDNN's eltwise_clip_v2 [0, 6] (see ops/core/onednn_eltwise.h).
#pragma once

#include "ops/core/variant.h"

namespace emt {

const OpVariant& relu6_onednn_variant();

}  // namespace emt
