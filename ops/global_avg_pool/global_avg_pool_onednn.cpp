#include "ops/global_avg_pool/global_avg_pool_onednn.h"

#include <optional>

#include "ops/core/onednn_variant_op.h"
#include "ops/global_avg_pool/global_avg_pool.h"

namespace emt {
namespace {

using dnnl::memory;
using onednn::engine;
using onednn::stream;

class GlobalAvgPoolPrimitives {
 public:
  // The [N,C] output is, in memory, the [N,C,1,1] a pooling writes, in either layout (the same
  // bytes for whole channel blocks): in src's, so that oneDNN runs its jit kernel rather than
  // the reference one it takes for mixed layouts. The output is always f32 (a rank-2 value is
  // never bf16), but oneDNN 2.6 pools bf16 only into bf16: a bf16 src is pooled into a bf16
  // copy in scratch, which a reorder widens to f32 (N x C values, negligible). Window = the
  // whole plane, so there is no padding to include or exclude.
  GlobalAvgPoolPrimitives(const Shape& input, Layout layout, DataType dtype)
      : src_(onednn::desc_of(input, layout, dtype)),
        dst_(onednn::desc_of({input[0], input[1], 1, 1}, layout)),
        pooled_(onednn::desc_of({input[0], input[1], 1, 1}, layout, dtype)),
        plane_size_(input[2] * input[3]),
        fwd_pd_(
            dnnl::pooling_forward::desc(
                // Inference: the backward is no pooling_backward wanting this as its hint.
                dnnl::prop_kind::forward_inference, dnnl::algorithm::pooling_avg_exclude_padding,
                src_, pooled_, {1, 1}, {input[2], input[3]}, {0, 0}, {0, 0}),
            engine()) {}

  void forward(const float* src, float* dst) {
    if (!fwd_) {
      fwd_.emplace();
      fwd_->prim = dnnl::pooling_forward(fwd_pd_);
      fwd_->src = memory(src_, engine(), DNNL_MEMORY_NONE);
      fwd_->dst = onednn::Port(dst_, pooled_, onednn::Port::Role::kWrite, 0);
    }
    fwd_->src.set_data_handle(const_cast<float*>(src));
    fwd_->prim.execute(stream(), {{DNNL_ARG_SRC, fwd_->src}, {DNNL_ARG_DST, fwd_->dst.bind(dst)}});
    fwd_->dst.finish();
    stream().wait();
  }

  // Every element of a plane gets grad_out / (H * W) of its plane: a binary_add that broadcasts
  // [N,C,1,1] over the planes, scales it on the way and adds in place, so the gradient is
  // accumulated in one pass, with no scratch (pooling_backward would overwrite).
  void backward(const float* diff_dst, float* diff_src) {
    if (!bwd_) {
      dnnl::primitive_attr attr;
      attr.set_scales(DNNL_ARG_SRC_1, 0, {1.0f / static_cast<float>(plane_size_)});
      bwd_.emplace();
      bwd_->prim = dnnl::binary(dnnl::binary::primitive_desc(
          dnnl::binary::desc(dnnl::algorithm::binary_add, src_, dst_, src_), attr, engine()));
      bwd_->diff_src = memory(src_, engine(), DNNL_MEMORY_NONE);
      bwd_->diff_dst = memory(dst_, engine(), DNNL_MEMORY_NONE);
    }
    bwd_->diff_src.set_data_handle(diff_src);
    bwd_->diff_dst.set_data_handle(const_cast<float*>(diff_dst));
    bwd_->prim.execute(stream(), {{DNNL_ARG_SRC_0, bwd_->diff_src},
                                  {DNNL_ARG_SRC_1, bwd_->diff_dst},
                                  {DNNL_ARG_DST, bwd_->diff_src}});
    stream().wait();
  }

 private:
  struct Forward {
    dnnl::primitive prim;
    memory src;
    onednn::Port dst;
  };
  struct Backward {
    dnnl::primitive prim;
    memory diff_src, diff_dst;
  };

  memory::desc src_, dst_;
  memory::desc pooled_;  // what the pooling writes: dst_ in src's dtype
  int64_t plane_size_;
  dnnl::pooling_forward::primitive_desc fwd_pd_;
  std::optional<Forward> fwd_;
  std::optional<Backward> bwd_;
};

class GlobalAvgPoolOnednnOp final : public onednn::VariantOp<GlobalAvgPoolPrimitives> {
 public:
  explicit GlobalAvgPoolOnednnOp(const Attrs& attrs) : VariantOp(global_avg_pool_schema(), attrs) {}

  void forward(const ForwardArgs& args) override {
    run(args.inputs[0],
        [&](GlobalAvgPoolPrimitives& p) { p.forward(args.inputs[0].data, args.outputs[0].data); });
  }

  void backward(const BackwardArgs& args) override {
    if (args.grad_inputs[0].empty()) return;
    run(args.inputs[0], [&](GlobalAvgPoolPrimitives& p) {
      p.backward(args.grad_outputs[0].data, args.grad_inputs[0].data);
    });
  }

 private:
  std::unique_ptr<GlobalAvgPoolPrimitives> make(const Shape& input, Layout layout,
                                                DataType dtype) const override {
    return std::make_unique<GlobalAvgPoolPrimitives>(input, layout, dtype);
  }
};

}  // namespace

const OpVariant& global_avg_pool_onednn_variant() {
  static const OpVariant variant{"global_avg_pool",
                                 "onednn",
                                 onednn::supports<GlobalAvgPoolOnednnOp>,
                                 onednn::create<GlobalAvgPoolOnednnOp>,
                                 LayoutPolicy::kEach,
                                 /*bf16=*/true};
  return variant;
}

}  // namespace emt
