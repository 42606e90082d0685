#include "ops/add/add_onednn.h"

#include "ops/add/add.h"
#include "ops/core/onednn_variant_op.h"

namespace emt {
namespace {

using dnnl::memory;

// Both inputs have the output's shape (add does not broadcast) and, by LayoutPolicy::kUniform,
// its layout and dtype, so every tensor runs as one flat run of numel elements whichever
// layout it has.
class AddPrimitives {
 public:
  AddPrimitives(const Shape& shape, DataType dtype)
      : data_(onednn::desc_of({shape_numel(shape)}, Layout::kPlain, dtype)),
        pd_(dnnl::binary::desc(dnnl::algorithm::binary_add, data_, data_, data_),
            onednn::engine()) {}

  // dst = a + b. dst may be a: the backward's accumulation runs in place.
  void add(const float* a, const float* b, float* dst) {
    if (!prim_) {
      prim_ = dnnl::binary(pd_);
      a_ = memory(data_, onednn::engine(), DNNL_MEMORY_NONE);
      b_ = memory(data_, onednn::engine(), DNNL_MEMORY_NONE);
      dst_ = memory(data_, onednn::engine(), DNNL_MEMORY_NONE);
    }
    a_.set_data_handle(const_cast<float*>(a));
    b_.set_data_handle(const_cast<float*>(b));
    dst_.set_data_handle(dst);
    prim_.execute(onednn::stream(),
                  {{DNNL_ARG_SRC_0, a_}, {DNNL_ARG_SRC_1, b_}, {DNNL_ARG_DST, dst_}});
    onednn::stream().wait();
  }

 private:
  memory::desc data_;
  dnnl::binary::primitive_desc pd_;
  dnnl::binary prim_;
  memory a_, b_, dst_;
};

class AddOnednnOp final : public onednn::VariantOp<AddPrimitives> {
 public:
  explicit AddOnednnOp(const Attrs& attrs) : VariantOp(add_schema(), attrs) {}

  void forward(const ForwardArgs& args) override {
    run(args.inputs[0], [&](AddPrimitives& p) {
      p.add(args.inputs[0].data, args.inputs[1].data, args.outputs[0].data);
    });
  }

  // d(a + b) / da = d(a + b) / db = 1: each wanted input gradient += grad_out, which is the
  // forward's primitive run in place (oneDNN allows dst to be src0).
  void backward(const BackwardArgs& args) override {
    run(args.inputs[0], [&](AddPrimitives& p) {
      for (const Tensor& grad_in : args.grad_inputs)
        if (!grad_in.empty()) p.add(grad_in.data, args.grad_outputs[0].data, grad_in.data);
    });
  }

 private:
  std::unique_ptr<AddPrimitives> make(const Shape& input, Layout, DataType dtype) const override {
    return std::make_unique<AddPrimitives>(input, dtype);
  }
};

}  // namespace

const OpVariant& add_onednn_variant() {
  static const OpVariant variant{"add",
                                 "onednn",
                                 onednn::supports<AddOnednnOp>,
                                 onednn::create<AddOnednnOp>,
                                 LayoutPolicy::kUniform,
                                 /*bf16=*/true};
  return variant;
}

}  // namespace emt
