#include "engine/compiler/layout.h"

#include <vector>

namespace emt {

void assign_layouts(Program& program) {
  std::vector<bool> blocked(program.values.size(), false);
  for (size_t v = 0; v < program.values.size(); ++v) {
    const ValueInfo& value = program.values[v];
    if (value.kind != ValueKind::kActivation || !can_block_channels(value.shape)) continue;
    bool takes = program.steps[value.producer].layouts != LayoutPolicy::kPlainOnly;
    for (int c : value.consumers)
      takes = takes && program.steps[c].layouts != LayoutPolicy::kPlainOnly;
    blocked[v] = takes;
  }
  for (const auto& [name, v] : program.outputs) blocked[v] = false;
  for (const LossTerm& t : program.graph->objective.terms) blocked[program.value(t.input)] = false;

  // A plain tensor of a uniform op makes its other tensors plain, which may reach further
  // uniform ops: repeat until nothing changes.
  for (bool changed = true; changed;) {
    changed = false;
    for (const Step& step : program.steps) {
      if (step.layouts != LayoutPolicy::kUniform) continue;
      std::vector<int> tensors = step.inputs;
      tensors.push_back(step.output);
      bool all_blocked = true;
      for (int v : tensors) all_blocked = all_blocked && blocked[v];
      if (all_blocked) continue;
      for (int v : tensors) {
        changed = changed || blocked[v];
        blocked[v] = false;
      }
    }
  }
  for (size_t v = 0; v < program.values.size(); ++v)
    program.values[v].layout = blocked[v] ? Layout::kChannelBlocked : Layout::kPlain;
}

}  // namespace emt
