// dense: y[n, o] = sum_k x[n, k] * weight[o, k] + bias[o], input [N,K] -> [N,out].
// The weight is stored [out, K] (PyTorch Linear / ONNX Gemm with transB) so that weights move
// between the frameworks without a transpose.
#pragma once

#include "ops/core/op.h"

namespace emt {

const OpSchema& dense_schema();

class DenseOp final : public Op {
 public:
  DenseOp(int64_t out_features, bool has_bias) : out_features_(out_features), has_bias_(has_bias) {}

  Inferred infer(std::span<const Shape> inputs) const override;
  void forward(const ForwardArgs& args) override;
  void backward(const BackwardArgs& args) override;

 private:
  int64_t out_features_;
  bool has_bias_;
};

}  // namespace emt
