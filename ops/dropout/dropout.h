// dropout: kTrain zeroes each element with probability `rate` and scales the survivors by
// 1 / (1 - rate) (inverted dropout), so the expected output equals the input and kEval is the
// identity with no rescaling.
//
// The mask is a pure function of ForwardArgs::seed and the flat element index, never of thread
// scheduling: a step replays exactly, and results match however parallel_for splits the work.
// backward applies the mask kept by the preceding forward, so it assumes that forward was kTrain.
#pragma once

#include <cstdint>
#include <vector>

#include "ops/core/op.h"

namespace emt {

const OpSchema& dropout_schema();

class DropoutOp final : public Op {
 public:
  explicit DropoutOp(double rate) : rate_(rate), scale_(static_cast<float>(1.0 / (1.0 - rate))) {}

  Inferred infer(std::span<const Shape> inputs) const override;
  void forward(const ForwardArgs& args) override;
  void backward(const BackwardArgs& args) override;

 private:
  double rate_;
  float scale_;
  // One byte per element rather than packed bits: parallel tasks write neighbouring entries.
  std::vector<uint8_t> keep_;
};

}  // namespace emt
