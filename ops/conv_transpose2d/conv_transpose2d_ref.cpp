#include <algorithm>
#include <memory>
#include <string>

#include "ops/conv_transpose2d/conv_transpose2d.h"

namespace emt {

ConvTranspose2dOp::ConvTranspose2dOp(const Attrs& attrs)
    : out_(attrs.get_int("out")),
      kernel_(attrs.get_int("kernel")),
      stride_(attrs.get_int("stride")),
      pad_(attrs.get_int("pad")),
      output_pad_(attrs.get_int("output_pad")),
      bias_(attrs.get_bool("bias")),
      activation_(parse_conv_activation("conv_transpose2d", attrs.get_string("activation"))) {
  const auto fail = [](const std::string& what) { throw OpError("conv_transpose2d: " + what); };
  if (out_ < 1) fail("out=" + std::to_string(out_) + " must be >= 1");
  if (kernel_ < 1) fail("kernel=" + std::to_string(kernel_) + " must be >= 1");
  if (stride_ < 1) fail("stride=" + std::to_string(stride_) + " must be >= 1");
  if (pad_ < -1) fail("pad=" + std::to_string(pad_) + " must be >= 0 (or -1 for automatic)");
  // output_pad picks one of the `stride` output sizes that conv2d maps to the same input size;
  // a value >= stride would add rows no input position reaches.
  if (output_pad_ < 0 || output_pad_ >= stride_)
    fail("output_pad=" + std::to_string(output_pad_) +
         " must be in [0, stride=" + std::to_string(stride_) + ")");
}

ConvGeometry ConvTranspose2dOp::geometry(const Shape& input) const {
  if (input.size() != 4)
    throw OpError("conv_transpose2d: input " + shape_str(input) + " must have rank 4 [N,C,H,W]");
  ConvGeometry g;
  g.n = input[0];
  g.cout = input[1];
  g.ho = input[2];
  g.wo = input[3];
  g.cin = out_;
  g.kernel = kernel_;
  g.stride = stride_;
  const int64_t pad = pad_ == -1 ? (kernel_ - 1) / 2 : pad_;
  // conv2d's view of this geometry pads symmetrically; output_pad shows only in h and w (the
  // floor of conv2d's output size formula absorbs it).
  g.set_padding({pad, pad, pad, pad});
  g.h = (g.ho - 1) * g.stride - 2 * pad + g.kernel + output_pad_;
  g.w = (g.wo - 1) * g.stride - 2 * pad + g.kernel + output_pad_;
  if (shape_numel(input) < 1)
    throw OpError("conv_transpose2d: input " + shape_str(input) + " has an empty dimension");
  if (g.h < 1 || g.w < 1)
    throw OpError("conv_transpose2d: input " + shape_str(input) +
                  " with kernel=" + std::to_string(g.kernel) +
                  " stride=" + std::to_string(g.stride) + " pad=" + std::to_string(pad) +
                  " output_pad=" + std::to_string(output_pad_) + " gives an empty output [" +
                  std::to_string(g.h) + "x" + std::to_string(g.w) + "]");
  return g;
}

Inferred ConvTranspose2dOp::infer(std::span<const Shape> inputs) const {
  const ConvGeometry g = geometry(inputs[0]);
  const int64_t kk = g.kernel * g.kernel;
  Inferred inferred;
  inferred.outputs = {{g.n, g.cin, g.h, g.w}};
  // He init wants fan_in = the number of terms summed into one output. Each output position
  // receives about (kernel/stride)^2 taps from each input channel, hence Cin*K*K/stride^2,
  // rather than PyTorch's Cout*K*K (computed from the weight's second axis, which for a
  // transposed conv counts outputs, not inputs).
  const int64_t fan_in = std::max<int64_t>(1, g.cout * kk / (g.stride * g.stride));
  inferred.params.push_back(
      {"weight", {g.cout, g.cin, g.kernel, g.kernel}, ParamInit::kHeNormal, fan_in});
  if (bias_) inferred.params.push_back({"bias", {g.cin}, ParamInit::kZeros, 1});
  inferred.macs_per_sample = g.cout * g.ho * g.wo * g.cin * kk;
  return inferred;
}

void ConvTranspose2dOp::forward(const ForwardArgs& args) {
  const ConvGeometry g = geometry(args.inputs[0].shape);
  const float* bias = bias_ ? args.params[1].data : nullptr;
  conv2d_scatter(g, args.inputs[0].data, args.params[0].data, bias, args.outputs[0].data, false,
                 activation_);
}

const OpSchema& conv_transpose2d_schema() {
  static const OpSchema schema{
      "conv_transpose2d",
      "transposed 2-D convolution (ONNX ConvTranspose): [N,Cin,H,W] -> [N,out,Ho,Wo], "
      "Ho = (H-1)*stride - 2*pad + kernel + output_pad",
      1,
      1,
      {
          {"out", AttrType::kInt, std::nullopt, "output channels"},
          {"kernel", AttrType::kInt, std::nullopt, "square kernel size"},
          {"stride", AttrType::kInt, AttrValue{int64_t{1}}, "upsampling factor"},
          {"pad", AttrType::kInt, AttrValue{int64_t{-1}},
           "rows/columns cropped from each side of the full output; -1 means (kernel-1)/2"},
          {"output_pad", AttrType::kInt, AttrValue{int64_t{0}},
           "extra rows/columns at the bottom/right, < stride; 1 with kernel 3, stride 2, pad 1 "
           "doubles the size"},
          {"bias", AttrType::kBool, AttrValue{true}, "adds a learned per-channel bias"},
          {"activation", AttrType::kString, AttrValue{std::string("none")},
           "none, relu or relu6, applied after the bias; inference only (backward rejects it): "
           "the compiler sets it when it fuses a following activation"},
      },
      [](const Attrs& attrs) -> std::unique_ptr<Op> {
        return std::make_unique<ConvTranspose2dOp>(attrs);
      }};
  return schema;
}

}  // namespace emt
