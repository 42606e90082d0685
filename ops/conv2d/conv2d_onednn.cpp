#include "ops/conv2d/conv2d_onednn.h"

#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "ops/conv2d/conv2d.h"
#include "ops/conv2d/conv2d_one_output.h"
#include "ops/core/onednn_context.h"

namespace emt {
namespace onednn {
namespace {

using dnnl::memory;
using Role = Port::Role;
using Args = std::unordered_map<int, memory>;

struct Convolution {
  using Fwd = dnnl::convolution_forward;
  using BwdData = dnnl::convolution_backward_data;
  using BwdWeights = dnnl::convolution_backward_weights;
  static constexpr dnnl::algorithm kAlgorithm = dnnl::algorithm::convolution_direct;
};

struct Deconvolution {
  using Fwd = dnnl::deconvolution_forward;
  using BwdData = dnnl::deconvolution_backward_data;
  using BwdWeights = dnnl::deconvolution_backward_weights;
  static constexpr dnnl::algorithm kAlgorithm = dnnl::algorithm::deconvolution_direct;
};

// Scratch slots (see onednn::scratch), distinct for all ports of one op, so that the weights
// primitive can read the diff_dst that the data primitive reordered. A slot only takes memory
// when a port needs a copy.
enum Slot {
  kSrc,
  kWeights,
  kBias,
  kDst,
  kDiffDst,
  kDiffDstForWeights,  // when the two backward primitives want diff_dst in different layouts
  kDiffSrc,
  kDiffWeights,
  kDiffBias,
};

template <class Family>
class Primitives final : public ConvPrimitives {
 public:
  explicit Primitives(const ConvSpec& spec)
      : spec_(spec),
        strides_{spec.stride, spec.stride},
        // oneDNN checks (in + pad_l + pad_r - kernel) / stride + 1 == out with the same floor
        // division as the reference, so emt's padding passes as it is: conv2d's TF SAME
        // (asymmetric) as well as the symmetric kind (conv_transpose2d's output_pad included:
        // it is < stride, and floors away).
        pad_l_{spec.pad_top, spec.pad_left},
        pad_r_{spec.pad_bottom, spec.pad_right},
        gemm_layouts_(gemm_on_plain(spec)),
        compute_type_(spec.src_dtype == DataType::kBF16 || spec.dst_dtype == DataType::kBF16
                          ? memory::data_type::bf16
                          : memory::data_type::f32),
        external_bias_(spec.transposed && spec.bias),
        widened_dst_(external_bias_ && spec.dst_dtype == DataType::kBF16),
        fwd_pd_(make_forward_pd()) {}

  void forward(const float* src, const float* weights, const float* bias, const float* residual,
               float* dst, std::optional<uint64_t> weights_version) override {
    if (!fwd_) {
      fwd_.emplace();
      fwd_->prim = typename Family::Fwd(fwd_pd_);
      fwd_->src = Port(user_src(), fwd_pd_.src_desc(), Role::kRead, kSrc);
      fwd_->weights = Port(plain_weights(), fwd_pd_.weights_desc(), Role::kReadCached, kWeights);
      fwd_->dst = Port(user_dst(), fwd_pd_.dst_desc(), Role::kWrite, kDst);
      if (external_bias_) {
        // The activation must follow the bias, so it rides on the add, not on the primitive.
        const memory::desc sum = widened_dst_ ? fwd_pd_.dst_desc() : user_dst();
        fwd_->bias_add = dnnl::binary(dnnl::binary::primitive_desc(
            dnnl::binary::desc(dnnl::algorithm::binary_add, sum, channel_vector(), sum),
            activation_attr(), engine()));
      } else if (spec_.bias) {
        fwd_->bias = Port(plain_bias(), fwd_pd_.bias_desc(), Role::kRead, kBias);
      }
    }
    Args args{{DNNL_ARG_SRC, fwd_->src.bind(src)},
              {DNNL_ARG_WEIGHTS, fwd_->weights.bind(weights, weights_version)},
              {DNNL_ARG_DST, fwd_->dst.bind(dst)}};
    if (spec_.bias && !external_bias_) args[DNNL_ARG_BIAS] = fwd_->bias.bind(bias);
    if (spec_.residual)
      args[DNNL_ARG_ATTR_MULTIPLE_POST_OP(residual_post_op()) | DNNL_ARG_SRC_1] =
          wrap(residual_desc(), residual);
    fwd_->prim.execute(stream(), args);
    if (!widened_dst_) fwd_->dst.finish();
    if (external_bias_) {
      // A widened dst gets its bias in scratch, in f32, and is rounded once by finish().
      const memory out = widened_dst_ ? fwd_->dst.bound() : wrap(user_dst(), dst);
      fwd_->bias_add.execute(stream(), {{DNNL_ARG_SRC_0, out},
                                        {DNNL_ARG_SRC_1, wrap(channel_vector(), bias)},
                                        {DNNL_ARG_DST, out}});
    }
    if (widened_dst_) fwd_->dst.finish();
    stream().wait();
  }

  void backward(const float* src, const float* weights, const float* diff_dst, float* diff_src,
                bool diff_src_zeroed, float* diff_weights, float* diff_bias,
                std::optional<uint64_t> weights_version) override {
    if (diff_src) {
      if (!bwd_data_) {
        const typename Family::BwdData::primitive_desc pd(
            typename Family::BwdData::desc(Family::kAlgorithm, md(user_src()), md(plain_weights()),
                                           md(user_dst()), strides_, pad_l_, pad_r_),
            engine(), fwd_pd_);
        bwd_data_.emplace();
        bwd_data_->prim = typename Family::BwdData(pd);
        bwd_data_->diff_dst = Port(user_dst(), pd.diff_dst_desc(), Role::kRead, kDiffDst);
        bwd_data_->weights = Port(plain_weights(), pd.weights_desc(), Role::kReadCached, kWeights);
        bwd_data_->diff_src = Port(user_src(), pd.diff_src_desc(), Role::kAccumulate, kDiffSrc);
      }
      bwd_data_->prim.execute(
          stream(),
          {{DNNL_ARG_DIFF_DST, bwd_data_->diff_dst.bind(diff_dst)},
           {DNNL_ARG_WEIGHTS, bwd_data_->weights.bind(weights, weights_version)},
           {DNNL_ARG_DIFF_SRC, bwd_data_->diff_src.bind_gradient(diff_src, diff_src_zeroed)}});
      bwd_data_->diff_src.finish();
    }
    // The bias gradient comes out of the weights primitive, so a bias gradient alone runs it too
    // (its weight gradient then lands in scratch and is dropped).
    if (diff_weights || (spec_.bias && diff_bias)) {
      if (!bwd_weights_) {
        const typename Family::BwdWeights::primitive_desc pd(
            typename Family::BwdWeights::desc(Family::kAlgorithm, md(user_src()),
                                              md(plain_weights()),
                                              spec_.bias ? md(plain_bias()) : memory::desc(),
                                              md(user_dst()), strides_, pad_l_, pad_r_),
            engine(), fwd_pd_);
        bwd_weights_.emplace();
        bwd_weights_->prim = typename Family::BwdWeights(pd);
        bwd_weights_->src = Port(user_src(), pd.src_desc(), Role::kRead, kSrc);
        bwd_weights_->diff_dst =
            Port(user_dst(), pd.diff_dst_desc(), Role::kRead, kDiffDstForWeights);
        bwd_weights_->diff_weights =
            Port(plain_weights(), pd.diff_weights_desc(), Role::kAccumulate, kDiffWeights);
        if (spec_.bias)
          bwd_weights_->diff_bias =
              Port(plain_bias(), pd.diff_bias_desc(), Role::kAccumulate, kDiffBias);
      }
      BackwardWeights& bw = *bwd_weights_;
      const bool reuse_diff_dst =
          diff_src && bw.diff_dst.chosen_desc() == bwd_data_->diff_dst.chosen_desc();
      Args args{{DNNL_ARG_SRC, bw.src.bind(src)},
                {DNNL_ARG_DIFF_DST,
                 reuse_diff_dst ? bwd_data_->diff_dst.bound() : bw.diff_dst.bind(diff_dst)},
                {DNNL_ARG_DIFF_WEIGHTS, bw.diff_weights.bind(diff_weights)}};
      if (spec_.bias) args[DNNL_ARG_DIFF_BIAS] = bw.diff_bias.bind(diff_bias);
      bw.prim.execute(stream(), args);
      bw.diff_weights.finish();
      if (spec_.bias) bw.diff_bias.finish();
    }
    stream().wait();
  }

 private:
  struct Forward {
    dnnl::primitive prim;
    Port src, weights, bias, dst;
    dnnl::primitive bias_add;  // dst += bias, when external_bias_
  };
  struct BackwardData {
    dnnl::primitive prim;
    Port diff_dst, weights, diff_src;
  };
  struct BackwardWeights {
    dnnl::primitive prim;
    Port src, diff_dst, diff_weights, diff_bias;
  };

  // Layouts, measured forward+backward at N=16 on one AVX-512 core (2 threads were too noisy
  // on a shared machine to add anything): between plain buffers, a 1x1 stride-1 ungrouped
  // convolution on nchw is a plain GEMM, which oneDNN runs as fast as its blocked kernel minus
  // the reorders (256->256 16x16: 7.7 vs 8.5 ms; 32->64 64x64: 9.8 vs 11.6 ms). Everything
  // else lets oneDNN choose (format_tag::any, i.e. blocked nChw16c), which the plan's blocked
  // activations already have; plain ones pay the reorders: its gemm fallback on nchw measured
  // 1.3x slower on the 3x3 s2 deconvolution 64->64 32x32, 1.3x on the 3->32 3x3 s2 stem and
  // 10x on a 3x3 depthwise C256 16x16.
  static bool gemm_on_plain(const ConvSpec& s) {
    return s.kernel == 1 && s.stride == 1 && s.pad_top == 0 && s.pad_left == 0 &&
           s.pad_bottom == 0 && s.pad_right == 0 && s.groups == 1 &&
           s.src_layout == Layout::kPlain && s.dst_layout == Layout::kPlain;
  }

  // The primitive's layout for an argument, in the dtype it computes in: the user's own dtype
  // for dst and biases, compute_type_ for src and weights. The plan's channel-blocked
  // activations are taken in their own layout (nChw16c), which oneDNN 2.6's jit kernels run on:
  // with format_tag::any it picks brgemm kernels on nhwc, and then every convolution reorders
  // its src and dst (EMT-Net 224x224 inference at batch 16 on one core: fp32 50 img/s against
  // 67 as it is, bf16 71 against 92). Everything else lets oneDNN choose.
  memory::desc md(const memory::desc& user, memory::data_type type) const {
    if (gemm_layouts_) return user;
    const auto& blocking = user.data.format_desc.blocking;
    const bool channel_blocked = user.data.format_kind == dnnl_blocked &&
                                 blocking.inner_nblks == 1 && blocking.inner_idxs[0] == 1;
    return memory::desc(user.dims(), type,
                        channel_blocked ? memory::format_tag::aBcd16b : memory::format_tag::any);
  }
  memory::desc md(const memory::desc& user) const { return md(user, user.data_type()); }
  memory::desc md_compute(const memory::desc& user) const { return md(user, compute_type_); }
  // What the primitive writes: a widened dst is the user's in f32.
  memory::desc primitive_dst() const {
    if (!widened_dst_) return md(user_dst());
    return desc_of(spec_.dst, spec_.dst_layout, DataType::kF32);
  }

  memory::desc user_src() const { return desc_of(spec_.src, spec_.src_layout, spec_.src_dtype); }
  memory::desc user_dst() const { return desc_of(spec_.dst, spec_.dst_layout, spec_.dst_dtype); }
  memory::desc plain_bias() const { return plain_desc({spec_.dst[1]}); }
  // The bias as [1, OC, 1, 1]: the same buffer, in the shape a binary primitive broadcasts,
  // and in dst's layout (the same bytes for whole channel blocks), without which oneDNN falls
  // back to its reference binary (84 of 143 ms of a batch-1 EMT-Net inference).
  memory::desc channel_vector() const { return desc_of({1, spec_.dst[1], 1, 1}, spec_.dst_layout); }

  // oneDNN's weights are [OC, IC, K, K], with a leading groups axis when grouped. A
  // deconvolution's buffer holds IC before OC (ONNX), which the tags iohw / giohw describe
  // without a copy.
  memory::desc plain_weights() const {
    const int64_t g = spec_.groups, k = spec_.kernel;
    const int64_t oc = spec_.dst[1] / g, ic = spec_.src[1] / g;
    const bool t = spec_.transposed;
    if (g == 1)
      return memory::desc({oc, ic, k, k}, memory::data_type::f32,
                          t ? memory::format_tag::iohw : memory::format_tag::oihw);
    return memory::desc({g, oc, ic, k, k}, memory::data_type::f32,
                        t ? memory::format_tag::giohw : memory::format_tag::goihw);
  }

  // The activation as an eltwise post-op (relu6 as clip_v2, the relu6 variant's algorithm),
  // then the residual as a binary add post-op.
  dnnl::primitive_attr activation_attr() const {
    dnnl::primitive_attr attr;
    dnnl::post_ops ops;
    if (spec_.activation == ConvActivation::kRelu)
      ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
    else if (spec_.activation == ConvActivation::kRelu6)
      ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_clip_v2, 0.0f, 6.0f);
    if (spec_.residual) ops.append_binary(dnnl::algorithm::binary_add, residual_desc());
    attr.set_post_ops(ops);
    return attr;
  }
  int residual_post_op() const { return spec_.activation == ConvActivation::kNone ? 0 : 1; }
  memory::desc residual_desc() const {
    return desc_of(spec_.dst, spec_.residual_layout, spec_.residual_dtype);
  }

  typename Family::Fwd::primitive_desc make_forward_pd() const {
    // forward_training, so that the backward primitives can take this descriptor as their
    // hint; an activation or a residual rules backward out, so those convolutions are built
    // for inference.
    const bool inference = spec_.activation != ConvActivation::kNone || spec_.residual;
    return typename Family::Fwd::primitive_desc(
        typename Family::Fwd::desc(
            inference ? dnnl::prop_kind::forward_inference : dnnl::prop_kind::forward_training,
            Family::kAlgorithm, md_compute(user_src()), md_compute(plain_weights()),
            spec_.bias && !external_bias_ ? md(plain_bias()) : memory::desc(), primitive_dst(),
            strides_, pad_l_, pad_r_),
        external_bias_ ? dnnl::primitive_attr() : activation_attr(), engine());
  }

  ConvSpec spec_;
  memory::dims strides_, pad_l_, pad_r_;
  bool gemm_layouts_;
  memory::data_type compute_type_;  // of src and weights: see ConvSpec::src_dtype
  // oneDNN 2.6 adds a deconvolution's bias in a separate reference pass: 9.7 of the 15.6 ms
  // forward of the decoder's 3x3 s2 64->64 32x32 at N=16 on one core. A jit binary add on the
  // plain output does it in 0.6 ms. (A binary on the blocked output would need the bias in the
  // same blocking, which oneDNN does not derive for it; the bias gradient costs 1.5 ms inside
  // the weights primitive, and reduction primitives only have reference kernels, so it stays.)
  // Convolutions fuse their bias into the kernel.
  bool external_bias_;
  // With a bf16 dst, dst += bias on the rounded dst would round twice (tests/onednn measured
  // 0.04 off), while the primitive's own bias pass is the reference one (EMT-Net 224x224 bf16
  // batch 1: 86 ms against 11 ms) and a binary post-op on oneDNN 2.6's bf16 deconvolution is
  // slower still (204 ms), as is a binary writing bf16 from f32 (oneDNN's reference binary):
  // the deconvolution writes f32 into scratch, the add (with the activation) runs there in
  // place, and the port's reorder rounds once into the bf16 dst.
  bool widened_dst_;
  typename Family::Fwd::primitive_desc fwd_pd_;
  std::optional<Forward> fwd_;
  std::optional<BackwardData> bwd_data_;
  std::optional<BackwardWeights> bwd_weights_;
};

}  // namespace

namespace {

ConvGeometry geometry_of(const ConvSpec& s) {
  ConvGeometry g;
  g.n = s.src[0];
  g.cin = s.src[1];
  g.h = s.src[2];
  g.w = s.src[3];
  g.cout = s.dst[1];
  g.ho = s.dst[2];
  g.wo = s.dst[3];
  g.kernel = s.kernel;
  g.stride = s.stride;
  g.groups = s.groups;
  g.set_padding({s.pad_top, s.pad_left, s.pad_bottom, s.pad_right});
  return g;
}

// A convolution to a single output channel, which oneDNN pads to a block of 16 channels and so
// runs 16x too slow (EMT-Net's 3x3 mask logit: 38 ms forward at batch 16 on one core, and a
// 16x-padded reorder of its gradient, against 8 + 15 ms for these kernels). They read src and
// add to diff_src in whichever layout the plan keeps them.
class OneOutputPrimitives final : public ConvPrimitives {
 public:
  explicit OneOutputPrimitives(const ConvSpec& spec)
      : geometry_(geometry_of(spec)), src_layout_(spec.src_layout) {}

  static bool fits(const ConvSpec& s) {
    return !s.transposed && s.dst[1] == 1 && s.groups == 1 &&
           s.activation == ConvActivation::kNone && s.src_dtype == DataType::kF32 &&
           s.dst_dtype == DataType::kF32 && s.dst_layout == Layout::kPlain && !s.residual &&
           one_output_conv_fits(geometry_of(s), s.src_layout);
  }

  void forward(const float* src, const float* weights, const float* bias, const float*, float* dst,
               std::optional<uint64_t>) override {
    one_output_conv_forward(geometry_, src, weights, bias, dst, src_layout_);
  }
  void backward(const float* src, const float* weights, const float* diff_dst, float* diff_src,
                bool, float* diff_weights, float* diff_bias, std::optional<uint64_t>) override {
    one_output_conv_backward(geometry_, src, weights, diff_dst, diff_src, diff_weights, diff_bias,
                             src_layout_);
  }

 private:
  ConvGeometry geometry_;
  Layout src_layout_;
};

}  // namespace

std::unique_ptr<ConvPrimitives> make_conv_primitives(const ConvSpec& spec) {
  if (spec.transposed) return std::make_unique<Primitives<Deconvolution>>(spec);
  if (OneOutputPrimitives::fits(spec)) return std::make_unique<OneOutputPrimitives>(spec);
  return std::make_unique<Primitives<Convolution>>(spec);
}

namespace {

std::string pad_str(const ConvSpec& s) {
  const bool symmetric =
      s.pad_top == s.pad_bottom && s.pad_left == s.pad_right && s.pad_top == s.pad_left;
  if (symmetric) return std::to_string(s.pad_top);
  return "[top " + std::to_string(s.pad_top) + ", left " + std::to_string(s.pad_left) +
         ", bottom " + std::to_string(s.pad_bottom) + ", right " + std::to_string(s.pad_right) +
         "]";
}

std::string spec_str(const ConvSpec& s) {
  return shape_str(s.src) + " " + layout_name(s.src_layout) + " " + dtype_name(s.src_dtype) +
         " -> " + shape_str(s.dst) + " " + layout_name(s.dst_layout) + " " +
         dtype_name(s.dst_dtype) + " kernel=" + std::to_string(s.kernel) +
         " stride=" + std::to_string(s.stride) + " pad=" + pad_str(s) +
         " groups=" + std::to_string(s.groups) +
         (s.activation == ConvActivation::kNone
              ? ""
              : std::string(" activation=") + conv_activation_name(s.activation));
}

}  // namespace

ConvOp::ConvOp(std::string name, std::unique_ptr<Op> reference, bool bias,
               ConvActivation activation)
    : name_(std::move(name)),
      reference_(std::move(reference)),
      bias_(bias),
      activation_(activation) {}

// A second input is a fused residual (ConvSpec::residual), of the output's shape.
Inferred ConvOp::infer(std::span<const Shape> inputs) const {
  if (inputs.size() != 2) return reference_->infer(inputs);
  Inferred inferred = reference_->infer(inputs.first(1));
  if (inputs[1] != inferred.outputs[0])
    throw OpError(name_ + ": residual " + shape_str(inputs[1]) + " must have the output's shape " +
                  shape_str(inferred.outputs[0]));
  return inferred;
}

template <class Body>
void ConvOp::run(std::span<const Tensor> inputs, const Tensor& output, const Body& body) {
  const Tensor& input = inputs[0];
  const Tensor* residual = inputs.size() > 1 ? &inputs[1] : nullptr;
  std::unique_ptr<ConvPrimitives>& primitives = cache_[{
      input.shape, input.layout, output.layout, input.dtype, output.dtype,
      residual ? std::optional(std::pair(residual->layout, residual->dtype)) : std::nullopt}];
  // Derived from the reference's inference only when the primitives are made (or an error is
  // reported): not on every call.
  auto full_spec = [&] {
    ConvSpec s = spec(input.shape);
    s.src_layout = input.layout;
    s.dst_layout = output.layout;
    s.src_dtype = input.dtype;
    s.dst_dtype = output.dtype;
    if (residual) {
      if (s.transposed)
        throw OpError(name_ + "[onednn]: a residual input is for convolutions only");
      s.residual = true;
      s.residual_layout = residual->layout;
      s.residual_dtype = residual->dtype;
    }
    return s;
  };
  try {
    if (!primitives) primitives = make_conv_primitives(full_spec());
    body(*primitives);
  } catch (const dnnl::error& e) {
    throw OpError(name_ + "[onednn] " + spec_str(full_spec()) + ": " + e.what());
  }
}

void ConvOp::forward(const ForwardArgs& args) {
  const float* bias = bias_ ? args.params[1].data : nullptr;
  const float* residual = args.inputs.size() > 1 ? args.inputs[1].data : nullptr;
  run(args.inputs, args.outputs[0], [&](ConvPrimitives& p) {
    p.forward(args.inputs[0].data, args.params[0].data, bias, residual, args.outputs[0].data,
              args.params_version);
  });
}

void ConvOp::backward(const BackwardArgs& args) {
  require_no_activation(name_, activation_);
  if (args.inputs[0].dtype != DataType::kF32 || args.outputs[0].dtype != DataType::kF32)
    throw OpError(name_ + "[onednn]: bf16 is for inference only; training runs in f32");
  if (args.inputs.size() > 1)
    throw OpError(name_ + "[onednn]: a fused residual is for inference only");
  float* diff_bias = bias_ ? args.grad_params[1].data : nullptr;
  run(args.inputs, args.outputs[0], [&](ConvPrimitives& p) {
    p.backward(args.inputs[0].data, args.params[0].data, args.grad_outputs[0].data,
               args.grad_inputs[0].data, args.grad_input_zeroed(0), args.grad_params[0].data,
               diff_bias, args.params_version);
  });
}

std::string ConvOp::probe(std::span<const Shape> inputs) const {
  if (inputs.size() != 1) return name_ + " takes 1 input, got " + std::to_string(inputs.size());
  try {
    infer(inputs);
    // Builds the forward descriptor only: cheap, as oneDNN generates code with the primitive.
    make_conv_primitives(spec(inputs[0]));
    return "";
  } catch (const OpError& e) {
    return e.what();
  } catch (const dnnl::error& e) {
    return "oneDNN cannot build " + spec_str(spec(inputs[0])) + ": " + e.what();
  }
}

}  // namespace onednn

namespace {

class Conv2dOnednnOp final : public onednn::ConvOp {
 public:
  explicit Conv2dOnednnOp(const Attrs& attrs)
      : ConvOp("conv2d", conv2d_schema().create(attrs), attrs.get_bool("bias"),
               parse_conv_activation("conv2d", attrs.get_string("activation"))),
        attrs_(attrs) {}

  // Read off the reference's inference, so that the two cannot disagree on shapes or groups.
  onednn::ConvSpec spec(const Shape& input) const override {
    const Inferred inferred = infer(std::span<const Shape>(&input, 1));
    const Shape& weight = inferred.params[0].shape;  // [cout, cin / groups, k, k]
    onednn::ConvSpec s;
    s.src = input;
    s.dst = inferred.outputs[0];
    s.groups = input[1] / weight[1];
    s.kernel = weight[2];
    s.stride = attrs_.get_int("stride");
    // The reference's own resolution (explicit, automatic or TF SAME), for this input size.
    const ConvPadding pad = conv2d_padding(attrs_, input[2], input[3]);
    s.pad_top = pad.top;
    s.pad_left = pad.left;
    s.pad_bottom = pad.bottom;
    s.pad_right = pad.right;
    s.bias = inferred.params.size() > 1;
    s.activation = activation();
    return s;
  }

 private:
  Attrs attrs_;
};

std::string conv2d_onednn_supports(const Attrs& attrs, std::span<const Shape> inputs) {
  try {
    return Conv2dOnednnOp(attrs).probe(inputs);
  } catch (const OpError& e) {
    return e.what();
  }
}

// One output channel runs on the f32 single-output kernels (OneOutputPrimitives): the mask logit
// at batch 16, 224x224 took 23 ms in oneDNN's bf16 kernel, padded to 16 channels, against 8 ms.
bool conv2d_prefers_f32(const Attrs& attrs, std::span<const Shape> inputs) {
  try {
    return conv2d_schema().create(attrs)->infer(inputs).outputs.at(0).at(1) == 1;
  } catch (const OpError&) {
    return false;
  }
}

}  // namespace

const OpVariant& conv2d_onednn_variant() {
  static const OpVariant variant{"conv2d",
                                 "onednn",
                                 conv2d_onednn_supports,
                                 [](const Attrs& attrs) -> std::unique_ptr<Op> {
                                   return std::make_unique<Conv2dOnednnOp>(attrs);
                                 },
                                 LayoutPolicy::kEach,
                                 /*bf16=*/true,
                                 conv2d_prefers_f32};
  return variant;
}

}  // namespace emt
