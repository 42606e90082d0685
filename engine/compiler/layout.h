// Layout and element-type assignment: which activations stay channel-blocked between backend
// variants, and which of those a bf16 inference plan keeps in bf16.
#pragma once

#include "engine/compiler/program.h"

namespace emt {

// Marks a value Layout::kChannelBlocked when its shape can be blocked, its producer and every
// reader take blocked tensors (Step::layouts), and the engine never reads it (not an output,
// not an objective input); an op whose tensors must share a layout (LayoutPolicy::kUniform)
// keeps all of them plain as soon as one must be. Gradients follow their values.
void assign_layouts(Program& program);

// For a bf16 plan (after assign_layouts): marks DataType::kBF16 each channel-blocked value
// whose producer and every reader take bf16 (Step::bf16); as with layouts, the tensors of a
// kUniform op share one dtype. Blocked values are never engine-facing, so neither inputs,
// targets, outputs nor objective inputs become bf16, nor any tensor of a reference kernel.
void assign_precision(Program& program);

}  // namespace emt
