// Human-readable views of a compiled program: the `engine check` summary and the `engine plan`
// table (every op with output shape, parameters and FLOPs, then totals and memory).
#pragma once

#include <string>

#include "engine/compiler/program.h"

namespace emt {

std::string format_summary(const Program& program);
std::string format_plan(const Program& program);
// One line per step: which kernel runs it and, when the reference does, why no variant did.
std::string format_dispatch(const Program& program);

}  // namespace emt
