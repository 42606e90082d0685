// conv_transpose2d: the transpose (adjoint) of conv2d, with ONNX ConvTranspose / PyTorch
// semantics: [N,Cin,H,W] -> [N,out,Ho,Wo], Ho = (H-1)*stride - 2*pad + kernel + output_pad,
// weight [Cin, out, K, K]. EMT-Net's decoder uses kernel 3, stride 2, pad 1, output_pad 1,
// which doubles the spatial size.
#pragma once

#include <span>

#include "ops/conv2d/conv2d.h"
#include "ops/core/op.h"

namespace emt {

const OpSchema& conv_transpose2d_schema();

class ConvTranspose2dOp final : public Op {
 public:
  explicit ConvTranspose2dOp(const Attrs& attrs);

  Inferred infer(std::span<const Shape> inputs) const override;
  void forward(const ForwardArgs& args) override;
  void backward(const BackwardArgs& args) override;

  // The conv2d this op transposes: its input is our output and its output our input, so the
  // shared conv2d kernels run with the roles of x and y swapped. Throws OpError naming the
  // shape when it does not fit.
  ConvGeometry geometry(const Shape& input) const;
  ConvActivation activation() const { return activation_; }

 private:
  int64_t out_, kernel_, stride_, pad_, output_pad_;
  bool bias_;
  ConvActivation activation_;
};

}  // namespace emt
