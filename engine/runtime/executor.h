// The reference backend: runs a compiled program step by step over one arena, and its backward
// pass in reverse order from the objective.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/compiler/memory_plan.h"
#include "engine/compiler/program.h"
#include "engine/runtime/params.h"

namespace emt {

// Where a NaN or an infinity first appears in one training step.
struct NonFiniteValue {
  const Step* step = nullptr;
  std::string what;  // "its output", "parameter 'c1.weight'", "the gradient of its output", ...
};

class Executor {
 public:
  // The store must hold every parameter of the program (ParamStore::init). A fused program
  // (CompileOptions::fuse) needs Mode::kEval.
  Executor(Program program, ParamStore& params, Mode mode);

  const Program& program() const { return program_; }
  Mode mode() const { return mode_; }
  // The value's buffer, in its layout (ValueInfo::layout; inputs, targets, outputs and objective
  // inputs are always plain).
  Tensor value(int index);
  Tensor value(const std::string& name) { return value(program_.value(name)); }
  // A plain f32 copy of any value, e.g. an intermediate one the oneDNN plan keeps blocked or
  // in bf16.
  std::vector<float> read(int index);
  std::vector<float> read(const std::string& name) { return read(program_.value(name)); }

  // With folded batch norms, first re-derives their params if the store's version moved.
  void forward(uint64_t seed = 0);
  // When set, forward() and backward() add each step's wall time (seconds) to
  // (*profile)[step]: forward in the first steps().size() slots, backward in the next ones.
  void set_profile(std::vector<double>* profile) { profile_ = profile; }
  // Objective at the current values; with gradients, seeds them and runs the backward pass,
  // accumulating parameter gradients into the store (the caller zeroes them per step).
  ObjectiveValue objective();
  ObjectiveValue backward();

  // After forward (and backward): the first step, in execution order, whose parameters or output
  // hold a non-finite value; else, walking backward, the first whose output or parameter
  // gradient does. nullopt when everything is finite.
  std::optional<NonFiniteValue> first_non_finite();

  int64_t arena_bytes() const { return static_cast<int64_t>(arena_.size() * sizeof(float)); }

 private:
  using Clock = std::chrono::steady_clock;

  // One step's BatchNormFold: the store tensors it reads and the derived params it fills.
  struct Folded {
    BatchNormFold fold;
    Shape weight_shape;
    const float *weight, *bias, *gamma, *beta, *mean, *var;  // bias may be null
    DerivedParams* derived;
  };

  Tensor view(std::vector<float>& arena, int index);
  void record(size_t slot, Clock::time_point start);
  ObjectiveValue evaluate(bool with_grad);
  // Brings every folded step's derived params up to the store's version.
  void refold();
  // Per step, BackwardArgs::zeroed_grad_inputs.
  static std::vector<uint64_t> zeroed_grad_inputs(const Program& program);

  Program program_;
  ParamStore& params_;
  Mode mode_;
  MemoryPlan plan_;
  std::vector<float> arena_;
  std::vector<float> grad_arena_;  // training only: same offsets, no reuse
  std::vector<std::vector<Tensor>> step_params_, step_param_grads_;
  std::vector<Folded> folds_;
  std::vector<uint64_t> zeroed_grad_inputs_;  // training only
  std::vector<double>* profile_ = nullptr;
};

}  // namespace emt
