// Shared machinery for ops that map each element independently (relu, relu6, sigmoid):
// shape is preserved, no parameters, one multiply-free pass.
#pragma once

#include <memory>

#include "ops/core/op.h"

namespace emt {

struct ElementwiseFns {
  float (*forward)(float x);
  // Derivative expressed through the input x and the output y = forward(x), whichever is cheaper.
  float (*derivative)(float x, float y);
};

std::unique_ptr<Op> make_elementwise_op(ElementwiseFns fns);

}  // namespace emt
