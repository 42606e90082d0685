// conv2d on oneDNN primitives (convolution_forward, _backward_data, _backward_weights).
// The primitive set is shared with conv_transpose2d's variant, which runs the same machinery on
// oneDNN's deconvolution primitives, as the reference kernels are shared between the two ops.
// This header stays free of oneDNN so that code picking variants need not see it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "ops/conv2d/conv2d.h"
#include "ops/core/variant.h"

namespace emt {

const OpVariant& conv2d_onednn_variant();

namespace onednn {

// One convolution (or, when transposed, deconvolution) in oneDNN's terms:
// src [N, IC, IH, IW] -> dst [N, OC, OH, OW], padding pad_top/pad_left before and
// pad_bottom/pad_right after the input (oneDNN's padding_l and padding_r). emt's weight buffer is
// [OC, IC/groups, K, K] for a convolution and, as in ONNX, [IC, OC/groups, K, K] for a
// deconvolution.
struct ConvSpec {
  bool transposed = false;
  std::vector<int64_t> src, dst;
  int64_t groups = 1, kernel = 1, stride = 1;
  int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  bool bias = false;
  // An eltwise post-op after the bias; forward only (the primitives are then built for
  // inference and backward is not available).
  ConvActivation activation = ConvActivation::kNone;
  // Of the emt buffers (src and diff_src, dst and diff_dst); the primitive may still choose
  // another, at the cost of a reorder.
  Layout src_layout = Layout::kPlain, dst_layout = Layout::kPlain;
  // Of src and dst (forward only). When either is bf16 the convolution computes in bf16: src
  // (reordered to bf16 when f32) and weights (the f32 buffer, rounded once per weights
  // version) in bf16, accumulation and bias in f32, dst written in its own dtype.
  DataType src_dtype = DataType::kF32, dst_dtype = DataType::kF32;
  // Inference fusion of a following skip addition: dst = act(conv(src) + bias) + residual,
  // residual being a second input of dst's shape in its own layout (a binary post-op).
  // Convolutions only, forward only.
  bool residual = false;
  Layout residual_layout = Layout::kPlain;
  DataType residual_dtype = DataType::kF32;
};

// The primitives of one ConvSpec, each created on its first use and reused after that.
// Buffers are emt's tensors in the spec's layouts; backward accumulates (+=) into the gradients and
// skips the null ones. Throws dnnl::error when oneDNN cannot build a primitive.
class ConvPrimitives {
 public:
  virtual ~ConvPrimitives() = default;
  // weights_version: ForwardArgs::params_version, which keeps the reordered weights.
  // residual: null unless the spec has one.
  virtual void forward(const float* src, const float* weights, const float* bias,
                       const float* residual, float* dst,
                       std::optional<uint64_t> weights_version) = 0;
  // diff_src_zeroed: diff_src holds zeros (BackwardArgs::zeroed_grad_inputs) and may be written.
  virtual void backward(const float* src, const float* weights, const float* diff_dst,
                        float* diff_src, bool diff_src_zeroed, float* diff_weights,
                        float* diff_bias, std::optional<uint64_t> weights_version) = 0;
};

std::unique_ptr<ConvPrimitives> make_conv_primitives(const ConvSpec& spec);

// Both variants: shapes from the reference op, the work from ConvPrimitives. Tensors map the
// same way for both ops (input = src, output = dst, params = weight and optional bias); only
// spec() differs.
class ConvOp : public Op {
 public:
  // name prefixes error messages; reference is the op's reference kernel, built from the
  // same attributes.
  ConvOp(std::string name, std::unique_ptr<Op> reference, bool bias, ConvActivation activation);

  // The reference owns the shape rules (depthwise, automatic padding, error messages).
  Inferred infer(std::span<const Shape> inputs) const override;
  void forward(const ForwardArgs& args) override;
  void backward(const BackwardArgs& args) override;

  // The node in oneDNN's terms for this input shape; throws OpError when it does not fit.
  virtual ConvSpec spec(const Shape& input) const = 0;

  // Empty when oneDNN can run this node, else why not: for OpVariant::supports.
  std::string probe(std::span<const Shape> inputs) const;

 protected:
  ConvActivation activation() const { return activation_; }

 private:
  template <class Body>
  void run(std::span<const Tensor> inputs, const Tensor& output, const Body& body);

  std::string name_;
  std::unique_ptr<Op> reference_;
  bool bias_;
  ConvActivation activation_;
  // Keyed by input shape, the layouts and the dtypes: a node normally sees one shape, and each
  // new one costs new primitives (and their JIT code), never one per call.
  std::map<std::tuple<Shape, Layout, Layout, DataType, DataType,
                      std::optional<std::pair<Layout, DataType>>>,
           std::unique_ptr<ConvPrimitives>>
      cache_;
};

}  // namespace onednn
}  // namespace emt
