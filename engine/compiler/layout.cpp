#include "engine/compiler/layout.h"

#include <vector>

namespace emt {

namespace {

// A false entry of a kUniform op's tensors makes all of them false, which may reach further
// kUniform ops: repeats until nothing changes.
void make_uniform(const Program& program, std::vector<bool>& flags) {
  for (bool changed = true; changed;) {
    changed = false;
    for (const Step& step : program.steps) {
      if (step.layouts != LayoutPolicy::kUniform) continue;
      std::vector<int> tensors = step.inputs;
      tensors.push_back(step.output);
      bool all = true;
      for (int v : tensors) all = all && flags[v];
      if (all) continue;
      for (int v : tensors) {
        changed = changed || flags[v];
        flags[v] = false;
      }
    }
  }
}

}  // namespace

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

  // A plain tensor of a uniform op makes its other tensors plain.
  make_uniform(program, blocked);
  for (size_t v = 0; v < program.values.size(); ++v)
    program.values[v].layout = blocked[v] ? Layout::kChannelBlocked : Layout::kPlain;
}

void assign_precision(Program& program) {
  std::vector<bool> bf16(program.values.size(), false);
  for (size_t v = 0; v < program.values.size(); ++v) {
    const ValueInfo& value = program.values[v];
    // Only blocked values: they alone are guaranteed to lie between variants and never to be
    // read by the engine.
    if (value.layout != Layout::kChannelBlocked) continue;
    bool takes = program.steps[value.producer].bf16;
    for (int c : value.consumers) takes = takes && program.steps[c].bf16;
    bf16[v] = takes;
  }
  make_uniform(program, bf16);
  for (size_t v = 0; v < program.values.size(); ++v)
    program.values[v].dtype = bf16[v] ? DataType::kBF16 : DataType::kF32;
}

}  // namespace emt
