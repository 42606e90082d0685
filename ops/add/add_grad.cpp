#include "ops/add/add.h"
#include "ops/core/parallel_elements.h"

namespace emt {

void AddOp::backward(const BackwardArgs& args) {
  const float* grad_out = args.grad_outputs[0].data;
  for (const Tensor& grad_in : args.grad_inputs) {
    if (grad_in.empty()) continue;
    float* g = grad_in.data;
    parallel_for_elements(grad_in.numel(), [&](int64_t i) { g[i] += grad_out[i]; });
  }
}

}  // namespace emt
