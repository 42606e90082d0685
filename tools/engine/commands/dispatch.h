// --verbose=dispatch: which implementation runs each op and why the others do not.
#pragma once

#include <iostream>
#include <memory>

#include "engine/compiler/plan_report.h"
#include "engine/compiler/program.h"

namespace emt::cli {

inline void print_dispatch(std::shared_ptr<const Graph> graph, int64_t batch, Backend backend,
                           Precision precision) {
  // bf16 exists only in the fused inference plan, so that is the one shown for it.
  const bool bf16 = precision == Precision::kBf16;
  std::cerr << format_dispatch(
      compile(std::move(graph), batch, backend, {.fuse = bf16, .precision = precision}));
}

}  // namespace emt::cli
