// Executor::first_non_finite: naming the op where a diverging training step first went wrong,
// which the total loss alone cannot say.
#include <cmath>

#include "engine/runtime/executor.h"

namespace emt {
namespace {

// bf16 values only exist in inference plans, which are not diagnosed.
bool all_finite(const Tensor& t) {
  if (!t.data || t.dtype != DataType::kF32) return true;
  const int64_t n = t.numel();
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(t.data[i])) return false;
  return true;
}

}  // namespace

std::optional<NonFiniteValue> Executor::first_non_finite() {
  // A folded step holds its derived weight and bias instead of the stored parameters.
  const auto param_name = [&](size_t s, size_t i) {
    const std::vector<int>& params = program_.steps[s].params;
    return params.size() == step_params_[s].size()
               ? program_.params[static_cast<size_t>(params[i])].name
               : "folded " + std::string(i == 0 ? "weight" : "bias");
  };
  for (size_t s = 0; s < program_.steps.size(); ++s) {
    const Step& step = program_.steps[s];
    for (size_t i = 0; i < step_params_[s].size(); ++i)
      if (!all_finite(step_params_[s][i]))
        return NonFiniteValue{&step, "parameter '" + param_name(s, i) + "'"};
    if (!all_finite(value(step.output))) return NonFiniteValue{&step, "its output"};
  }
  if (mode_ != Mode::kTrain) return std::nullopt;
  for (size_t s = program_.steps.size(); s-- > 0;) {
    const Step& step = program_.steps[s];
    if (!all_finite(view(grad_arena_, step.output)))
      return NonFiniteValue{&step, "the gradient of its output"};
    for (size_t i = 0; i < step_param_grads_[s].size(); ++i)
      if (!all_finite(step_param_grads_[s][i]))
        return NonFiniteValue{&step, "the gradient of parameter '" + param_name(s, i) + "'"};
  }
  return std::nullopt;
}

}  // namespace emt
