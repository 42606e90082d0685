// global_avg_pool: [N,C,H,W] -> [N,C], the mean of each channel plane. The output is 2-D rather
// than [N,C,1,1] so that dense can follow directly without a reshape.
#pragma once

#include "ops/core/op.h"

namespace emt {

const OpSchema& global_avg_pool_schema();

class GlobalAvgPoolOp final : public Op {
 public:
  Inferred infer(std::span<const Shape> inputs) const override;
  void forward(const ForwardArgs& args) override;
  void backward(const BackwardArgs& args) override;
};

}  // namespace emt
