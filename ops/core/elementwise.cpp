#include "ops/core/elementwise.h"

#include "ops/core/parallel_elements.h"

namespace emt {
namespace {

class ElementwiseOp final : public Op {
 public:
  explicit ElementwiseOp(ElementwiseFns fns) : fns_(fns) {}

  Inferred infer(std::span<const Shape> inputs) const override { return {{inputs[0]}, {}, 0}; }

  void forward(const ForwardArgs& args) override {
    const float* src = args.inputs[0].data;
    float* dst = args.outputs[0].data;
    parallel_for_elements(args.inputs[0].numel(),
                          [&](int64_t i) { dst[i] = fns_.forward(src[i]); });
  }

  void backward(const BackwardArgs& args) override {
    if (args.grad_inputs[0].empty()) return;
    const float* src = args.inputs[0].data;
    const float* dst = args.outputs[0].data;
    const float* grad_dst = args.grad_outputs[0].data;
    float* grad_src = args.grad_inputs[0].data;
    parallel_for_elements(args.inputs[0].numel(), [&](int64_t i) {
      grad_src[i] += grad_dst[i] * fns_.derivative(src[i], dst[i]);
    });
  }

 private:
  ElementwiseFns fns_;
};

}  // namespace

std::unique_ptr<Op> make_elementwise_op(ElementwiseFns fns) {
  return std::make_unique<ElementwiseOp>(fns);
}

}  // namespace emt
