#include "engine/compiler/plan_report.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "engine/compiler/fusion.h"
#include "engine/compiler/memory_plan.h"

namespace emt {
namespace {

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string mib(int64_t floats) {
  return fmt("%.2f MiB", static_cast<double>(floats) * 4 / 1048576.0);
}

int64_t step_params(const Program& p, const Step& s) {
  int64_t n = 0;
  for (int i : s.params) n += p.params[i].spec.trainable ? shape_numel(p.params[i].spec.shape) : 0;
  return n;
}

std::string pad(std::string s, size_t width) {
  if (s.size() < width) s += std::string(width - s.size(), ' ');
  return s;
}

std::string lpad(const std::string& s, size_t width) {
  return s.size() < width ? std::string(width - s.size(), ' ') + s : s;
}

std::string percent_saved(int64_t part, int64_t whole) {
  return fmt("%.0f", 100.0 * (1.0 - static_cast<double>(part) /
                                        static_cast<double>(std::max<int64_t>(1, whole))));
}

// What inference fusion does to this graph, from both compilations of it (the one given and
// the other), so that `engine plan` shows it whichever it was handed.
std::string format_fusion(const Program& program) {
  const Program other =
      compile(program.graph, program.batch, program.backend, {.fuse = !program.fused});
  const Program& fused = program.fused ? program : other;
  const Program& plain = program.fused ? other : program;
  size_t count = 0;
  for (const Step& s : fused.steps) count += s.fused.empty() ? 0 : 1;
  std::ostringstream out;
  out << "\ninference fusion (eval executors): " << count << " fused ops, "
      << fused.elided_nodes.size() << " removed\n";
  for (const Step& s : fused.steps)
    if (!s.fused.empty()) out << "  " << fusion_label(s) << "\n";
  for (const std::string& n : fused.elided_nodes)
    out << "  " << n << " removed (identity in eval)\n";
  const MemoryPlan with = plan_memory(fused, Lifetime::kInference);
  const MemoryPlan without = plan_memory(plain, Lifetime::kInference);
  out << "  ops:                   " << plain.steps.size() << " -> " << fused.steps.size() << "\n";
  out << "  inference activations: " << mib(with.arena_floats) << " arena with fusion, "
      << mib(without.arena_floats) << " without ("
      << percent_saved(with.arena_floats, without.arena_floats) << "% saved)\n";
  return out.str();
}

}  // namespace

std::string format_summary(const Program& program) {
  const Graph& g = *program.graph;
  std::ostringstream out;
  out << "graph '" << g.name << "': OK\n";
  out << "  files:    ";
  for (size_t i = 0; i < g.files.size(); ++i) out << (i ? ", " : "") << g.files[i];
  out << "\n  inputs:   ";
  for (int v = 0; v < static_cast<int>(program.values.size()); ++v)
    if (program.values[v].kind == ValueKind::kInput)
      out << program.values[v].name << " " << shape_str(program.values[v].shape) << "  ";
  out << "\n  targets:  ";
  for (const GraphInput& t : g.targets) out << t.name << " " << shape_str(t.shape) << "  ";
  out << "\n  outputs:  ";
  for (const auto& [name, v] : program.outputs)
    out << name << " = " << program.values[v].name << " " << shape_str(program.values[v].shape)
        << "  ";
  out << "\n  ops:      " << program.steps.size() << " (" << g.aliases.size()
      << " block instances)\n";
  out << "  params:   " << program.trainable_param_count() << " trainable + "
      << program.state_param_count() << " batch-norm statistics\n";
  out << "  compute:  " << fmt("%.1f", static_cast<double>(program.macs_per_sample()) / 1e6)
      << " M multiply-adds per image\n";
  out << "  objective:";
  for (const LossTerm& t : g.objective.terms)
    out << " " << t.weight << " * " << loss_kind_name(t.kind) << "(" << t.input << ", " << t.target
        << (t.kind == LossKind::kWeightedBce ? ", W_p=" + fmt("%g", t.pos_weight) : "") << ")";
  out << "\n";
  if (!program.removed_nodes.empty())
    out << "  removed:  " << program.removed_nodes.size()
        << " node(s) feeding no output or loss term\n";
  return out.str();
}

std::string format_plan(const Program& program) {
  std::ostringstream out;
  size_t name_width = 4;
  for (const Step& s : program.steps) name_width = std::max(name_width, s.node->name.size());
  name_width = std::min<size_t>(name_width + 2, 40);
  out << lpad("#", 4) << "  " << pad("node", name_width) << pad("op", 18) << pad("output", 22)
      << lpad("params", 10) << lpad("MFLOPs", 10) << "\n";
  int64_t total_params = 0, total_macs = 0;
  for (size_t i = 0; i < program.steps.size(); ++i) {
    const Step& s = program.steps[i];
    const int64_t params = step_params(program, s);
    const int64_t macs = s.macs_per_sample * program.batch;
    total_params += params;
    total_macs += macs;
    out << lpad(std::to_string(i), 4) << "  " << pad(s.node->name, name_width)
        << pad(s.node->op, 18) << pad(shape_str(program.values[s.output].shape), 22)
        << lpad(std::to_string(params), 10)
        << lpad(fmt("%.2f", 2.0 * static_cast<double>(macs) / 1e6), 10) << "\n";
  }
  const MemoryPlan infer = plan_memory(program, Lifetime::kInference);
  const MemoryPlan train = plan_memory(program, Lifetime::kTraining);  // unused when fused
  out << "\ntotals (batch " << program.batch << ")\n";
  out << "  ops:                   " << program.steps.size() << "\n";
  out << "  trainable parameters:  " << total_params << " ("
      << fmt("%.3f", static_cast<double>(total_params) / 1e6) << " M, " << mib(total_params)
      << " fp32)\n";
  out << "  batch-norm statistics: " << program.state_param_count() << "\n";
  out << "  forward:               " << fmt("%.1f", static_cast<double>(total_macs) / 1e6)
      << " M multiply-adds = " << fmt("%.2f", 2.0 * static_cast<double>(total_macs) / 1e9)
      << " GFLOPs\n";
  out << "  inference activations: " << mib(infer.arena_floats) << " arena with liveness reuse ("
      << mib(infer.naive_floats) << " without, "
      << percent_saved(infer.arena_floats, infer.naive_floats) << "% saved)\n";
  if (!program.fused)
    out << "  training activations:  " << mib(train.arena_floats)
        << " (kept for backward) + the same again for gradients\n";
  if (!program.removed_nodes.empty()) {
    out << "  removed (dead):        ";
    for (const std::string& n : program.removed_nodes) out << n << " ";
    out << "\n";
  }
  out << format_fusion(program);
  return out.str();
}

std::string format_dispatch(const Program& program) {
  std::ostringstream out;
  int blocked = 0, bf16 = 0;
  for (const ValueInfo& v : program.values) {
    blocked += v.layout == Layout::kChannelBlocked;
    bf16 += v.dtype == DataType::kBF16;
  }
  out << "dispatch (backend " << backend_name(program.backend) << "; " << blocked << " of "
      << program.values.size() << " values kept channel-blocked";
  if (program.precision == Precision::kBf16) out << ", " << bf16 << " of them in bf16";
  out << ")\n";
  for (const Step& s : program.steps) {
    const ValueInfo& output = program.values[s.output];
    out << "  " << pad(s.node->name, 32) << pad(s.node->op, 18) << pad(s.impl, 10)
        << pad(layout_name(output.layout), 8) << dtype_name(output.dtype);
    if (!s.dispatch_note.empty()) out << "  (" << s.dispatch_note << ")";
    out << "\n";
  }
  return out.str();
}

}  // namespace emt
