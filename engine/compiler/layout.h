// Layout assignment: which activations stay channel-blocked between backend variants.
#pragma once

#include "engine/compiler/program.h"

namespace emt {

// Marks a value Layout::kChannelBlocked when its shape can be blocked, its producer and every
// reader take blocked tensors (Step::layouts), and the engine never reads it (not an output,
// not an objective input); an op whose tensors must share a layout (LayoutPolicy::kUniform)
// keeps all of them plain as soon as one must be. Gradients follow their values.
void assign_layouts(Program& program);

}  // namespace emt
