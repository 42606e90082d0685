// The oneDNN variants in dispatch order (desktop engine only: links oneDNN).
#pragma once

#include <string>
#include <vector>

#include "ops/core/variant.h"

namespace emt {

const std::vector<const OpVariant*>& onednn_variants();
// nullptr when the op has no oneDNN variant.
const OpVariant* find_onednn_variant(const std::string& op);
// Empty when the CPU runs oneDNN's bf16 kernels natively (AVX512-BF16 or AMX), else why not.
std::string onednn_bf16_unsupported_reason();
// Applies the engine's thread count to oneDNN's OpenMP runtime.
void set_onednn_threads(int threads);

}  // namespace emt
