// The oneDNN variants in dispatch order (desktop engine only: links oneDNN).
#pragma once

#include <vector>

#include "ops/core/variant.h"

namespace emt {

const std::vector<const OpVariant*>& onednn_variants();
// nullptr when the op has no oneDNN variant.
const OpVariant* find_onednn_variant(const std::string& op);
// Applies the engine's thread count to oneDNN's OpenMP runtime.
void set_onednn_threads(int threads);

}  // namespace emt
