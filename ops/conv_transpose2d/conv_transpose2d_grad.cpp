#include "ops/conv_transpose2d/conv_transpose2d.h"

namespace emt {

// With conv2d's roles swapped (its x is our output, its y our input), our input gradient is
// conv2d's forward of grad_output, and our weight gradient is conv2d's weight gradient with
// grad_output as its input and our input as its output gradient.
void ConvTranspose2dOp::backward(const BackwardArgs& args) {
  require_no_activation("conv_transpose2d", activation_);
  const ConvGeometry g = geometry(args.inputs[0].shape);
  const float* grad_y = args.grad_outputs[0].data;
  if (!args.grad_inputs[0].empty())
    conv2d_gather(g, grad_y, args.params[0].data, nullptr, args.grad_inputs[0].data, true);
  if (!args.grad_params[0].empty())
    conv2d_weight_grad(g, grad_y, args.inputs[0].data, args.grad_params[0].data);
  if (bias_ && !args.grad_params[1].empty())
    conv2d_channel_sums(grad_y, g.n, g.cin, g.h * g.w, args.grad_params[1].data);
}

}  // namespace emt
