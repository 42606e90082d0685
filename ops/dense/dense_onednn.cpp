#include "ops/dense/dense_onednn.h"

#include <optional>
#include <unordered_map>

#include "ops/core/onednn_variant_op.h"
#include "ops/dense/dense.h"

namespace emt {
namespace {

using dnnl::memory;
using onednn::engine;
using onednn::plain_desc;
using onednn::Port;
using onednn::stream;
using Role = Port::Role;

// Scratch slots (see onednn::scratch), distinct for all ports of one op. On these plain layouts
// only the accumulated gradients take one.
enum Slot { kSrc, kWeights, kBias, kDst, kDiffDst, kDiffSrc, kDiffWeights, kDiffBias };

// All layouts plain: src and dst nc, and emt's [out, K] weight is oneDNN's oi. oneDNN then runs
// its jit GEMM on emt's buffers; with format_tag::any it picks brgemm on blocked weights, which
// the classifier head (one small GEMM per step) would pay in reorders.
class DensePrimitives {
 public:
  DensePrimitives(const Shape& input, int64_t out, bool bias)
      : src_(plain_desc({input[0], input[1]})),
        weights_(plain_desc({out, input[1]})),
        bias_(bias ? plain_desc({out}) : memory::desc()),
        dst_(plain_desc({input[0], out})),
        fwd_pd_(dnnl::inner_product_forward::desc(dnnl::prop_kind::forward_training, src_, weights_,
                                                  bias_, dst_),
                engine()) {}

  void forward(const float* src, const float* weights, const float* bias, float* dst) {
    if (!fwd_) {
      fwd_.emplace();
      fwd_->prim = dnnl::inner_product_forward(fwd_pd_);
      fwd_->src = Port(src_, fwd_pd_.src_desc(), Role::kRead, kSrc);
      fwd_->weights = Port(weights_, fwd_pd_.weights_desc(), Role::kRead, kWeights);
      if (has_bias()) fwd_->bias = Port(bias_, fwd_pd_.bias_desc(), Role::kRead, kBias);
      fwd_->dst = Port(dst_, fwd_pd_.dst_desc(), Role::kWrite, kDst);
    }
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, fwd_->src.bind(src)},
                                         {DNNL_ARG_WEIGHTS, fwd_->weights.bind(weights)},
                                         {DNNL_ARG_DST, fwd_->dst.bind(dst)}};
    if (has_bias()) args[DNNL_ARG_BIAS] = fwd_->bias.bind(bias);
    fwd_->prim.execute(stream(), args);
    fwd_->dst.finish();
    stream().wait();
  }

  void backward(const float* src, const float* weights, const float* diff_dst, float* diff_src,
                float* diff_weights, float* diff_bias) {
    if (diff_src) {
      if (!bwd_data_) {
        const dnnl::inner_product_backward_data::primitive_desc pd(
            dnnl::inner_product_backward_data::desc(src_, weights_, dst_), engine(), fwd_pd_);
        bwd_data_.emplace();
        bwd_data_->prim = dnnl::inner_product_backward_data(pd);
        bwd_data_->diff_dst = Port(dst_, pd.diff_dst_desc(), Role::kRead, kDiffDst);
        bwd_data_->weights = Port(weights_, pd.weights_desc(), Role::kRead, kWeights);
        bwd_data_->diff_src = Port(src_, pd.diff_src_desc(), Role::kAccumulate, kDiffSrc);
      }
      BackwardData& bd = *bwd_data_;
      bd.prim.execute(stream(), {{DNNL_ARG_DIFF_DST, bd.diff_dst.bind(diff_dst)},
                                 {DNNL_ARG_WEIGHTS, bd.weights.bind(weights)},
                                 {DNNL_ARG_DIFF_SRC, bd.diff_src.bind(diff_src)}});
      bd.diff_src.finish();
    }
    // One primitive computes both: a bias gradient alone runs it too, and the weight gradient
    // then lands in scratch and is dropped.
    if (diff_weights || (has_bias() && diff_bias)) {
      if (!bwd_weights_) {
        const dnnl::inner_product_backward_weights::primitive_desc pd(
            dnnl::inner_product_backward_weights::desc(src_, weights_, bias_, dst_), engine(),
            fwd_pd_);
        bwd_weights_.emplace();
        bwd_weights_->prim = dnnl::inner_product_backward_weights(pd);
        bwd_weights_->src = Port(src_, pd.src_desc(), Role::kRead, kSrc);
        bwd_weights_->diff_dst = Port(dst_, pd.diff_dst_desc(), Role::kRead, kDiffDst);
        bwd_weights_->diff_weights =
            Port(weights_, pd.diff_weights_desc(), Role::kAccumulate, kDiffWeights);
        if (has_bias())
          bwd_weights_->diff_bias = Port(bias_, pd.diff_bias_desc(), Role::kAccumulate, kDiffBias);
      }
      BackwardWeights& bw = *bwd_weights_;
      std::unordered_map<int, memory> args{
          {DNNL_ARG_SRC, bw.src.bind(src)},
          {DNNL_ARG_DIFF_DST, bw.diff_dst.bind(diff_dst)},
          {DNNL_ARG_DIFF_WEIGHTS, bw.diff_weights.bind(diff_weights)}};
      if (has_bias()) args[DNNL_ARG_DIFF_BIAS] = bw.diff_bias.bind(diff_bias);
      bw.prim.execute(stream(), args);
      bw.diff_weights.finish();
      if (has_bias()) bw.diff_bias.finish();
    }
    stream().wait();
  }

 private:
  struct Forward {
    dnnl::primitive prim;
    Port src, weights, bias, dst;
  };
  struct BackwardData {
    dnnl::primitive prim;
    Port diff_dst, weights, diff_src;
  };
  struct BackwardWeights {
    dnnl::primitive prim;
    Port src, diff_dst, diff_weights, diff_bias;
  };

  bool has_bias() const { return !bias_.is_zero(); }

  memory::desc src_, weights_, bias_, dst_;
  dnnl::inner_product_forward::primitive_desc fwd_pd_;
  std::optional<Forward> fwd_;
  std::optional<BackwardData> bwd_data_;
  std::optional<BackwardWeights> bwd_weights_;
};

class DenseOnednnOp final : public onednn::VariantOp<DensePrimitives> {
 public:
  explicit DenseOnednnOp(const Attrs& attrs) : VariantOp(dense_schema(), attrs) {}

  // Params as infer() publishes them: weight, then the bias if the node has one.
  void forward(const ForwardArgs& args) override {
    const float* bias = args.params.size() > 1 ? args.params[1].data : nullptr;
    run(args.inputs[0], [&](DensePrimitives& p) {
      p.forward(args.inputs[0].data, args.params[0].data, bias, args.outputs[0].data);
    });
  }

  void backward(const BackwardArgs& args) override {
    float* diff_bias = args.grad_params.size() > 1 ? args.grad_params[1].data : nullptr;
    run(args.inputs[0], [&](DensePrimitives& p) {
      p.backward(args.inputs[0].data, args.params[0].data, args.grad_outputs[0].data,
                 args.grad_inputs[0].data, args.grad_params[0].data, diff_bias);
    });
  }

 private:
  // Read off the reference's inference, so that the two cannot disagree on the params.
  std::unique_ptr<DensePrimitives> make(const Shape& input, Layout, DataType) const override {
    const Inferred inferred = infer(std::span<const Shape>(&input, 1));
    return std::make_unique<DensePrimitives>(input, inferred.params[0].shape[0],
                                             inferred.params.size() > 1);
  }
};

}  // namespace

const OpVariant& dense_onednn_variant() {
  static const OpVariant variant{"dense", "onednn", onednn::supports<DenseOnednnOp>,
                                 onednn::create<DenseOnednnOp>};
  return variant;
}

}  // namespace emt
