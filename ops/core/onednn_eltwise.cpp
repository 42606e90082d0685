#include "ops/core/onednn_eltwise.h"

#include <optional>

#include "ops/core/onednn_variant_op.h"

namespace emt::onednn {
namespace {

using dnnl::memory;
using Role = Port::Role;

bool backward_reads_dst(dnnl::algorithm kind) {
  using dnnl::algorithm;
  switch (kind) {
    case algorithm::eltwise_relu_use_dst_for_bwd:
    case algorithm::eltwise_tanh_use_dst_for_bwd:
    case algorithm::eltwise_elu_use_dst_for_bwd:
    case algorithm::eltwise_sqrt_use_dst_for_bwd:
    case algorithm::eltwise_logistic_use_dst_for_bwd:
    case algorithm::eltwise_exp_use_dst_for_bwd:
    case algorithm::eltwise_clip_v2_use_dst_for_bwd:
      return true;
    default:
      return false;
  }
}

// Every element maps on its own, so any shape runs as one flat run of numel elements, in either
// layout and dtype (the input, output and gradients share them, LayoutPolicy::kUniform): the
// simplest layout for oneDNN's vectorised kernel.
class EltwisePrimitives {
 public:
  EltwisePrimitives(const EltwiseSpec& spec, const Shape& shape, DataType dtype)
      : spec_(spec),
        data_(desc_of({shape_numel(shape)}, Layout::kPlain, dtype)),
        // forward_training: the backward primitive takes this descriptor as its hint.
        fwd_pd_(dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_training, spec.algorithm,
                                            data_, spec.alpha, spec.beta),
                engine()) {}

  void forward(const float* src, float* dst) {
    if (!fwd_) {
      fwd_.emplace();
      fwd_->prim = dnnl::eltwise_forward(fwd_pd_);
      fwd_->src = Port(data_, fwd_pd_.src_desc(), Role::kRead, 0);
      fwd_->dst = Port(data_, fwd_pd_.dst_desc(), Role::kWrite, 1);
    }
    fwd_->prim.execute(stream(),
                       {{DNNL_ARG_SRC, fwd_->src.bind(src)}, {DNNL_ARG_DST, fwd_->dst.bind(dst)}});
    fwd_->dst.finish();
    stream().wait();
  }

  // diff_src += diff_dst * f'(src), with f' read off src or dst as the algorithm wants.
  // diff_src_zeroed: diff_src holds zeros (BackwardArgs::zeroed_grad_inputs), so it may be
  // written.
  void backward(const float* src, const float* dst, const float* diff_dst, float* diff_src,
                bool diff_src_zeroed) {
    const bool reads_dst = backward_reads_dst(spec_.algorithm);
    if (!bwd_) {
      const dnnl::eltwise_backward::primitive_desc pd(
          dnnl::eltwise_backward::desc(spec_.algorithm, data_, data_, spec_.alpha, spec_.beta),
          engine(), fwd_pd_);
      bwd_.emplace();
      bwd_->prim = dnnl::eltwise_backward(pd);
      bwd_->data = Port(data_, reads_dst ? pd.dst_desc() : pd.src_desc(), Role::kRead, 0);
      bwd_->diff_dst = Port(data_, pd.diff_dst_desc(), Role::kRead, 1);
      bwd_->diff_src = Port(data_, pd.diff_src_desc(), Role::kAccumulate, 2);
    }
    bwd_->prim.execute(
        stream(),
        {{reads_dst ? DNNL_ARG_DST : DNNL_ARG_SRC, bwd_->data.bind(reads_dst ? dst : src)},
         {DNNL_ARG_DIFF_DST, bwd_->diff_dst.bind(diff_dst)},
         {DNNL_ARG_DIFF_SRC, bwd_->diff_src.bind_gradient(diff_src, diff_src_zeroed)}});
    bwd_->diff_src.finish();
    stream().wait();
  }

 private:
  struct Forward {
    dnnl::primitive prim;
    Port src, dst;
  };
  struct Backward {
    dnnl::primitive prim;
    Port data, diff_dst, diff_src;
  };

  const EltwiseSpec& spec_;
  memory::desc data_;
  dnnl::eltwise_forward::primitive_desc fwd_pd_;
  std::optional<Forward> fwd_;
  std::optional<Backward> bwd_;
};

class EltwiseOp final : public VariantOp<EltwisePrimitives> {
 public:
  EltwiseOp(const EltwiseSpec& spec, const Attrs& attrs)
      : VariantOp(spec.schema(), attrs), spec_(spec) {}

  void forward(const ForwardArgs& args) override {
    run(args.inputs[0],
        [&](EltwisePrimitives& p) { p.forward(args.inputs[0].data, args.outputs[0].data); });
  }

  void backward(const BackwardArgs& args) override {
    if (args.grad_inputs[0].empty()) return;
    run(args.inputs[0], [&](EltwisePrimitives& p) {
      p.backward(args.inputs[0].data, args.outputs[0].data, args.grad_outputs[0].data,
                 args.grad_inputs[0].data, args.grad_input_zeroed(0));
    });
  }

 private:
  std::unique_ptr<EltwisePrimitives> make(const Shape& input, Layout,
                                          DataType dtype) const override {
    return std::make_unique<EltwisePrimitives>(spec_, input, dtype);
  }

  const EltwiseSpec& spec_;
};

}  // namespace

std::string eltwise_supports(const EltwiseSpec& spec, const Attrs& attrs,
                             std::span<const Shape> inputs) {
  try {
    return EltwiseOp(spec, attrs).probe(inputs);
  } catch (const OpError& e) {
    return e.what();
  }
}

std::unique_ptr<Op> make_eltwise_op(const EltwiseSpec& spec, const Attrs& attrs) {
  return std::make_unique<EltwiseOp>(spec, attrs);
}

}  // namespace emt::onednn
