#include "engine/compiler/memory_plan.h"

#include <algorithm>
#include <numeric>

#include "ops/core/checked_size.h"

namespace emt {
namespace {

constexpr int64_t kAlignFloats = 16;  // 64-byte alignment for every buffer

int64_t aligned(int64_t n) { return (n + kAlignFloats - 1) / kAlignFloats * kAlignFloats; }

struct Interval {
  int begin, end;  // step indices, inclusive
};

bool overlaps(const Interval& a, const Interval& b) { return a.begin <= b.end && b.begin <= a.end; }

// The placed values whose lifetimes may overlap a new one, without scanning every placed value
// (which made a 200,000-node plan quadratic): short lifetimes are found through their first
// step, and the few long ones (graph inputs, outputs, long skips) are always checked.
class PlacedValues {
 public:
  PlacedValues(const std::vector<Interval>& live, int last_step)
      : live_(live), by_begin_(static_cast<size_t>(last_step) + 2) {}

  void add(int v) {
    const Interval& iv = live_[v];
    if (iv.end - iv.begin > kShortSpan)
      long_.push_back(v);
    else
      by_begin_[static_cast<size_t>(iv.begin + 1)].push_back(v);
  }

  std::vector<int> overlapping(const Interval& iv) const {
    std::vector<int> found;
    for (int u : long_)
      if (overlaps(live_[u], iv)) found.push_back(u);
    for (int begin = std::max(-1, iv.begin - kShortSpan); begin <= iv.end; ++begin)
      for (int u : by_begin_[static_cast<size_t>(begin + 1)])
        if (overlaps(live_[u], iv)) found.push_back(u);
    return found;
  }

 private:
  static constexpr int kShortSpan = 64;  // steps
  const std::vector<Interval>& live_;
  std::vector<std::vector<int>> by_begin_;  // short-lived values by first step + 1
  std::vector<int> long_;
};

// Before the executor allocates it: a graph whose activations cannot fit is a clear refusal,
// not a bad_alloc or the kernel's OOM killer.
void check_arena(const Program& program, const MemoryPlan& plan, Lifetime lifetime) {
  const int64_t limit = program.graph->limits.max_arena_bytes;
  const int64_t bytes = checked_mul(plan.arena_floats, int64_t{sizeof(float)}, "the arena size");
  if (bytes > limit)
    throw GraphError(program.graph->loc,
                     "graph '" + program.graph->name + "' at batch " +
                         std::to_string(program.batch) + " needs a " +
                         (lifetime == Lifetime::kTraining ? "training" : "inference") +
                         " activation arena of " + std::to_string(bytes) +
                         " bytes, more than limits.max_arena_bytes = " + std::to_string(limit) +
                         " (raise it with --set, or use a smaller batch or input)");
}

}  // namespace

MemoryPlan plan_memory(const Program& program, Lifetime lifetime) {
  const int n = static_cast<int>(program.values.size());
  const int last_step = static_cast<int>(program.steps.size());
  std::vector<Interval> live(n);
  std::vector<bool> is_output(n, false);
  for (const auto& [name, v] : program.outputs) is_output[v] = true;
  // Executor::objective() reads the loss inputs after the forward, in eval mode too (the
  // validation loss): a logit whose last reader is an early sigmoid must not be overwritten.
  for (const LossTerm& t : program.graph->objective.terms) is_output[program.value(t.input)] = true;
  for (int v = 0; v < n; ++v) {
    const ValueInfo& info = program.values[v];
    live[v].begin = info.producer;  // -1 for inputs and targets: alive before the first step
    live[v].end = info.producer;
    for (int c : info.consumers) live[v].end = std::max(live[v].end, c);
    if (lifetime == Lifetime::kTraining || is_output[v] || info.kind != ValueKind::kActivation)
      live[v].end = last_step;
  }

  MemoryPlan plan;
  plan.offsets.assign(n, 0);
  std::vector<int> by_size(n);
  std::iota(by_size.begin(), by_size.end(), 0);
  std::stable_sort(by_size.begin(), by_size.end(), [&](int a, int b) {
    return shape_numel(program.values[a].shape) > shape_numel(program.values[b].shape);
  });
  // Greedy by decreasing size: each value takes the lowest gap left by already placed values
  // whose lifetimes overlap its own (the classic offset-assignment heuristic). While training
  // every value lives to the last step, so all overlap and the greedy stacks them in turn.
  const bool all_overlap = lifetime == Lifetime::kTraining;
  PlacedValues placed(live, last_step);
  for (int v : by_size) {
    const int64_t size = aligned(shape_numel(program.values[v].shape));
    plan.naive_floats = checked_add(plan.naive_floats, size, "the arena size");
    int64_t offset = all_overlap && size > 0 ? plan.arena_floats : 0;
    if (!all_overlap) {
      std::vector<std::pair<int64_t, int64_t>> busy;
      for (int u : placed.overlapping(live[v]))
        busy.emplace_back(plan.offsets[u],
                          plan.offsets[u] + aligned(shape_numel(program.values[u].shape)));
      std::sort(busy.begin(), busy.end());
      for (const auto& [b, e] : busy) {
        if (offset + size <= b) break;
        offset = std::max(offset, e);
      }
      placed.add(v);
    }
    plan.offsets[v] = offset;
    plan.arena_floats = std::max(plan.arena_floats, checked_add(offset, size, "the arena size"));
  }
  check_arena(program, plan, lifetime);
  return plan;
}

}  // namespace emt
