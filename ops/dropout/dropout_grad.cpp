#include "ops/core/parallel_elements.h"
#include "ops/dropout/dropout.h"

namespace emt {

void DropoutOp::backward(const BackwardArgs& args) {
  const Tensor& grad_in = args.grad_inputs[0];
  if (grad_in.empty()) return;
  const int64_t n = grad_in.numel();
  if (keep_.size() != static_cast<size_t>(n))
    throw OpError("dropout backward needs a preceding train-mode forward on input " +
                  shape_str(grad_in.shape));
  const float* dy = args.grad_outputs[0].data;
  float* dx = grad_in.data;
  parallel_for_elements(n, [&](int64_t i) {
    if (keep_[i]) dx[i] += dy[i] * scale_;
  });
}

}  // namespace emt
