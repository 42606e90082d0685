#include "ops/add/add.h"
#include "ops/core/parallel_elements.h"

namespace emt {

Inferred AddOp::infer(std::span<const Shape> inputs) const {
  if (inputs.size() != 2)
    throw OpError("add needs exactly 2 inputs, got " + std::to_string(inputs.size()));
  if (inputs[0] != inputs[1])
    throw OpError("add needs inputs of the same shape, got " + shape_str(inputs[0]) + " and " +
                  shape_str(inputs[1]));
  return {{inputs[0]}, {}, 0};
}

void AddOp::forward(const ForwardArgs& args) {
  const float* a = args.inputs[0].data;
  const float* b = args.inputs[1].data;
  float* out = args.outputs[0].data;
  parallel_for_elements(args.outputs[0].numel(), [&](int64_t i) { out[i] = a[i] + b[i]; });
}

const OpSchema& add_schema() {
  static const OpSchema schema{
      "add", "a + b, same shapes",
      2,     2,
      {},    [](const Attrs&) {
                                 return std::unique_ptr<Op>(std::make_unique<AddOp>()); }};
  return schema;
}

}  // namespace emt
