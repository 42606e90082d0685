#include "engine/runtime/executor.h"

#include <algorithm>
#include <stdexcept>

#include "engine/compiler/fusion.h"

namespace emt {
namespace {

uint64_t mix(uint64_t seed, uint64_t step) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ull * (step + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

Executor::Executor(Program program, ParamStore& params, Mode mode)
    : program_(std::move(program)), params_(params), mode_(mode) {
  if (program_.fused && mode == Mode::kTrain)
    throw std::logic_error("a fused program runs in eval mode only: compile it unfused to train");
  // The compiler guarantees this (assign_precision); a reference kernel reading bf16 bytes as
  // floats would compute garbage without a sign of it, so a broken guarantee stops here.
  for (const Step& step : program_.steps) {
    if (step.bf16) continue;
    std::vector<int> tensors = step.inputs;
    tensors.push_back(step.output);
    for (int v : tensors)
      if (program_.values[v].dtype != DataType::kF32)
        throw std::logic_error("step '" + step.node->name + "' (" + step.impl +
                               ") cannot take bf16 value '" + program_.values[v].name + "'");
  }
  plan_ = plan_memory(program_, mode == Mode::kTrain ? Lifetime::kTraining : Lifetime::kInference);
  arena_.assign(static_cast<size_t>(plan_.arena_floats), 0.0f);
  if (mode == Mode::kTrain) {
    grad_arena_.assign(arena_.size(), 0.0f);
    params_.ensure_grads();
  }
  auto store_data = [&](int p) { return params_.at(program_.params[p].name).value.data(); };
  for (const Step& step : program_.steps) {
    std::vector<Tensor> values, grads;
    if (step.fold) {
      const BatchNormFold& f = *step.fold;
      const Shape& shape = program_.params[f.weight].spec.shape;
      const int64_t channels = shape[f.channel_axis];
      // Keyed by the source tensors, so that programs of other batch sizes share the result.
      DerivedParams& derived =
          params_.derived(program_.params[f.weight].name + "+" + program_.params[f.gamma].name,
                          static_cast<size_t>(shape_numel(shape)), static_cast<size_t>(channels));
      folds_.push_back({f, shape, store_data(f.weight), f.bias >= 0 ? store_data(f.bias) : nullptr,
                        store_data(f.gamma), store_data(f.beta), store_data(f.mean),
                        store_data(f.var), &derived});
      values.push_back({derived.weight.data(), shape});
      values.push_back({derived.bias.data(), {channels}});
    } else {
      for (int p : step.params) {
        ParamEntry& e = params_.at(program_.params[p].name);
        values.push_back({e.value.data(), e.spec.shape});
        grads.push_back({e.grad.empty() ? nullptr : e.grad.data(), e.spec.shape});
      }
    }
    step_params_.push_back(std::move(values));
    step_param_grads_.push_back(std::move(grads));
  }
  if (mode == Mode::kTrain) zeroed_grad_inputs_ = zeroed_grad_inputs(program_);
}

// Backward runs the steps in reverse, so the last reader of a value is the first to add to its
// gradient, which backward() has just zeroed, unless the objective seeded it or the step reads
// the value twice.
std::vector<uint64_t> Executor::zeroed_grad_inputs(const Program& program) {
  std::vector<bool> seeded(program.values.size(), false);
  for (const LossTerm& t : program.graph->objective.terms) seeded[program.value(t.input)] = true;
  std::vector<uint64_t> masks(program.steps.size(), 0);
  for (size_t s = 0; s < program.steps.size(); ++s) {
    const std::vector<int>& inputs = program.steps[s].inputs;
    for (size_t i = 0; i < inputs.size() && i < 64; ++i) {
      const ValueInfo& v = program.values[inputs[i]];
      const bool last_reader =
          !v.consumers.empty() &&
          *std::max_element(v.consumers.begin(), v.consumers.end()) == static_cast<int>(s);
      const bool read_once = std::count(inputs.begin(), inputs.end(), inputs[i]) == 1;
      if (v.kind == ValueKind::kActivation && last_reader && read_once && !seeded[inputs[i]])
        masks[s] |= uint64_t{1} << i;
    }
  }
  return masks;
}

void Executor::refold() {
  const uint64_t version = params_.version();
  for (Folded& f : folds_) {
    DerivedParams& d = *f.derived;
    if (d.valid && d.version == version) continue;
    fold_batch_norm(f.weight_shape, f.fold.channel_axis, f.fold.eps, f.weight, f.bias, f.gamma,
                    f.beta, f.mean, f.var, d.weight.data(), d.bias.data());
    d.version = version;
    d.valid = true;
  }
}

Tensor Executor::view(std::vector<float>& arena, int index) {
  const ValueInfo& info = program_.values[index];
  return {arena.data() + plan_.offsets[index], info.shape, info.layout, info.dtype};
}

Tensor Executor::value(int index) { return view(arena_, index); }

std::vector<float> Executor::read(int index) {
  const Tensor t = value(index);
  std::vector<float> values(static_cast<size_t>(t.numel()));
  if (t.dtype == DataType::kBF16) {
    const auto* bf16 = reinterpret_cast<const uint16_t*>(t.data);
    for (size_t i = 0; i < values.size(); ++i) values[i] = from_bf16(bf16[i]);
  } else {
    std::copy(t.data, t.data + t.numel(), values.begin());
  }
  if (t.layout == Layout::kPlain) return values;
  std::vector<float> plain(values.size());
  unblock_channels(values.data(), t.shape, plain.data());
  return plain;
}

void Executor::forward(uint64_t seed) {
  refold();
  for (size_t s = 0; s < program_.steps.size(); ++s) {
    Step& step = program_.steps[s];
    std::vector<Tensor> inputs;
    for (int v : step.inputs) inputs.push_back(value(v));
    const Tensor output = value(step.output);
    const auto start = Clock::now();
    step.op->forward({inputs, step_params_[s], std::span<const Tensor>(&output, 1), mode_,
                      mix(seed, s), params_.version()});
    record(s, start);
  }
  // Batch norms have moved their running statistics.
  if (mode_ == Mode::kTrain) params_.mark_updated();
}

void Executor::record(size_t slot, Clock::time_point start) {
  if (!profile_) return;
  if (profile_->size() < 2 * program_.steps.size()) profile_->resize(2 * program_.steps.size());
  (*profile_)[slot] += std::chrono::duration<double>(Clock::now() - start).count();
}

ObjectiveValue Executor::evaluate(bool with_grad) {
  const Objective& objective = program_.graph->objective;
  std::vector<TermBinding> bindings;
  for (const LossTerm& term : objective.terms) {
    const int input = program_.value(term.input);
    bindings.push_back({value(input), value(program_.value(term.target)),
                        with_grad ? view(grad_arena_, input) : Tensor{}});
  }
  return evaluate_objective(objective, bindings);
}

ObjectiveValue Executor::objective() { return evaluate(false); }

ObjectiveValue Executor::backward() {
  if (mode_ != Mode::kTrain) throw std::logic_error("backward needs an executor in train mode");
  std::fill(grad_arena_.begin(), grad_arena_.end(), 0.0f);
  const ObjectiveValue result = evaluate(true);
  for (size_t s = program_.steps.size(); s-- > 0;) {
    Step& step = program_.steps[s];
    std::vector<Tensor> inputs, grad_inputs;
    for (int v : step.inputs) {
      inputs.push_back(value(v));
      // Graph inputs and targets need no gradient.
      const bool needs_grad = program_.values[v].kind == ValueKind::kActivation;
      grad_inputs.push_back(needs_grad ? view(grad_arena_, v) : Tensor{});
    }
    const Tensor output = value(step.output);
    const Tensor grad_output = view(grad_arena_, step.output);
    const auto start = Clock::now();
    step.op->backward({inputs, step_params_[s], std::span<const Tensor>(&output, 1),
                       std::span<const Tensor>(&grad_output, 1), grad_inputs, step_param_grads_[s],
                       params_.version(), zeroed_grad_inputs_[s]});
    record(program_.steps.size() + s, start);
  }
  return result;
}

}  // namespace emt
