// add(a, b) = a + b for two inputs of identical shape (no broadcasting: the residual
// connections it serves always join tensors of one shape, so a mismatch is a graph bug).
#pragma once

#include "ops/core/op.h"

namespace emt {

const OpSchema& add_schema();

class AddOp final : public Op {
 public:
  Inferred infer(std::span<const Shape> inputs) const override;
  void forward(const ForwardArgs& args) override;
  void backward(const BackwardArgs& args) override;
};

}  // namespace emt
