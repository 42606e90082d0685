// ONNX import, spatial ops: Conv, ConvTranspose and BatchNormalization.
#include <algorithm>

#include "engine/onnx/importer.h"

namespace emt::onnx_import {

// The input of a 2-D conv/pool: [N, C, H, W].
const Value& Importer::spatial_input(const std::string& what) const {
  const Value& x = runtime(0, "input");
  if (x.shape.size() != 4)
    fail_unsupported(
        x.shape.size() == 3
            ? "1-D " + what + " (input " + dims_str(x.shape) + "); the engine has 2-D NCHW ops only"
        : x.shape.size() == 5
            ? "3-D " + what + " (input " + dims_str(x.shape) + "); the engine has 2-D NCHW ops only"
            : what + " of a " + std::to_string(x.shape.size()) + "-D input " + dims_str(x.shape) +
                  "; the engine needs [N, C, H, W]");
  return x;
}

// strides, pads, dilations and auto_pad of Conv / ConvTranspose, reduced to the engine's one
// stride and one pad (checked before the weight, so that the attributes are what a refusal
// names first).
Importer::ConvAttrs Importer::conv_attrs() const {
  const std::string auto_pad = attr_string("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET")
    fail_unsupported("auto_pad = " + printable(auto_pad) +
                     " is not supported (only NOTSET, with explicit pads)");
  if (const auto d = attr_ints("dilations")) {
    if (d->size() != 2) fail_format("dilations " + dims_str(*d) + " must have 2 values");
    if ((*d)[0] != 1 || (*d)[1] != 1)
      fail_unsupported("dilations " + dims_str(*d) + " are not supported (only 1)");
  }
  ConvAttrs c;
  if (const auto s = attr_ints("strides")) {
    if (s->size() != 2) fail_format("strides " + dims_str(*s) + " must have 2 values");
    if ((*s)[0] < 1 || (*s)[1] < 1) fail_format("strides " + dims_str(*s) + " must be >= 1");
    if ((*s)[0] != (*s)[1])
      fail_unsupported("unequal strides " + dims_str(*s) +
                       " are not supported (one stride for both axes)");
    c.stride = (*s)[0];
  }
  if (const auto p = attr_ints("pads")) {
    if (p->size() != 4) fail_format("pads " + dims_str(*p) + " must have 4 values");
    if (std::any_of(p->begin(), p->end(), [](int64_t v) { return v < 0; }))
      fail_unsupported("negative pads " + dims_str(*p) + " are not supported");
    if (std::any_of(p->begin(), p->end(), [&](int64_t v) { return v != (*p)[0]; }))
      fail_unsupported("asymmetric pads " + dims_str(*p) +
                       " are not supported (the engine pads every side alike)");
    c.pad = (*p)[0];
  }
  return c;
}

// The kernel size from the weight [., ., kH, kW], checked against kernel_shape.
int64_t Importer::conv_kernel(const Shape& weight) const {
  const int64_t kh = weight[2], kw = weight[3];
  if (const auto k = attr_ints("kernel_shape"); k && *k != Shape{kh, kw})
    fail_format("kernel_shape " + dims_str(*k) + " contradicts the weight " + dims_str(weight));
  if (kh != kw)
    fail_unsupported("the non-square kernel " + std::to_string(kh) + "x" + std::to_string(kw) +
                     " is not supported (the engine's kernels are square)");
  return kh;
}

// Input 2 of Conv/ConvTranspose: the optional per-output-channel bias.
std::optional<std::vector<float>> Importer::optional_bias(int64_t cout) {
  if (!has_input(2)) return std::nullopt;
  const onnx::TensorProto& b = constant(2, "bias");
  if (dims_of(b) != Shape{cout})
    fail_format("the bias " + dims_str(dims_of(b)) + " does not match " + std::to_string(cout) +
                " output channels");
  return floats(b, "bias '" + printable(input(2)) + "'");
}

// The node, its weight (input 1) and optional bias, and its output value.
void Importer::emit_conv(const std::string& op, const std::string& kind, const Value& x,
                         const std::vector<std::pair<std::string, std::string>>& attrs,
                         const onnx::TensorProto& w, std::optional<std::vector<float>>& bias,
                         const Shape& out_shape) {
  const std::string name = engine_name(index_, kind);
  emit(op, name, {x.engine}, attrs, {index_});
  add_weight(name, "weight", dims_of(w), floats(w, "weight '" + printable(input(1)) + "'"));
  if (bias) add_weight(name, "bias", {out_shape[1]}, std::move(*bias));
  define(0, {name, out_shape});
}

void Importer::import_conv() {
  const Value& x = spatial_input("convolution");
  ConvAttrs c = conv_attrs();
  const onnx::TensorProto& w = constant(1, "weight");
  const Shape wd = dims_of(w);
  if (wd.size() != 4)
    fail_format("the weight " + dims_str(wd) + " does not fit the input " + dims_str(x.shape));
  c.kernel = conv_kernel(wd);
  const int64_t group = attr_int("group", 1);
  const int64_t cin = x.shape[1], cout = wd[0];
  if (group < 1 || cin % group != 0 || wd[1] * group != cin || cout % group != 0)
    fail_format("the weight " + dims_str(wd) + " with group " + std::to_string(group) +
                " does not fit the input " + dims_str(x.shape));
  std::optional<std::vector<float>> bias = optional_bias(cout);
  const int64_t ho = (x.shape[2] + 2 * c.pad - c.kernel) / c.stride + 1;
  const int64_t wo = (x.shape[3] + 2 * c.pad - c.kernel) / c.stride + 1;
  if (x.shape[2] + 2 * c.pad < c.kernel || x.shape[3] + 2 * c.pad < c.kernel)
    fail_format("the " + std::to_string(c.kernel) + "x" + std::to_string(c.kernel) +
                " window is larger than the padded input " + dims_str(x.shape));
  require_outputs(1, "Conv has one output");

  const bool depthwise = group > 1 && group == cin && cout == cin;
  std::vector<std::pair<std::string, std::string>> attrs;
  if (!depthwise) attrs.emplace_back("out", std::to_string(cout));
  attrs.emplace_back("kernel", std::to_string(c.kernel));
  if (c.stride != 1) attrs.emplace_back("stride", std::to_string(c.stride));
  attrs.emplace_back("pad", std::to_string(c.pad));
  if (depthwise)
    attrs.emplace_back("depthwise", "true");
  else if (group != 1)
    attrs.emplace_back("groups", std::to_string(group));
  if (!bias) attrs.emplace_back("bias", "false");
  emit_conv("conv2d", "conv", x, attrs, w, bias, {x.shape[0], cout, ho, wo});
}

void Importer::import_conv_transpose() {
  const Value& x = spatial_input("transposed convolution");
  const int64_t group = attr_int("group", 1);
  if (group != 1)
    fail_unsupported("group = " + std::to_string(group) +
                     " is not supported (the engine's conv_transpose2d is not grouped)");
  if (attr("output_shape"))
    fail_unsupported("output_shape is not supported (give pads and output_padding instead)");
  ConvAttrs c = conv_attrs();
  const onnx::TensorProto& w = constant(1, "weight");
  const Shape wd = dims_of(w);
  if (wd.size() != 4)
    fail_format("the weight " + dims_str(wd) + " does not fit the input " + dims_str(x.shape));
  c.kernel = conv_kernel(wd);
  int64_t output_pad = 0;
  if (const auto op = attr_ints("output_padding")) {
    if (op->size() != 2) fail_format("output_padding " + dims_str(*op) + " must have 2 values");
    if ((*op)[0] != (*op)[1])
      fail_unsupported("unequal output_padding " + dims_str(*op) + " is not supported");
    output_pad = (*op)[0];
    if (output_pad < 0 || output_pad >= c.stride)
      fail_format("output_padding " + dims_str(*op) + " must be in [0, stride " +
                  std::to_string(c.stride) + ")");
  }
  const int64_t cin = x.shape[1], cout = wd[1];
  if (wd[0] != cin)
    fail_format("the weight " + dims_str(wd) + " does not fit the input " + dims_str(x.shape) +
                " (ConvTranspose weights are [C_in, C_out, kH, kW])");
  std::optional<std::vector<float>> bias = optional_bias(cout);
  const int64_t ho = (x.shape[2] - 1) * c.stride - 2 * c.pad + c.kernel + output_pad;
  const int64_t wo = (x.shape[3] - 1) * c.stride - 2 * c.pad + c.kernel + output_pad;
  if (ho < 1 || wo < 1) fail_format("the output of input " + dims_str(x.shape) + " would be empty");
  require_outputs(1, "ConvTranspose has one output");

  std::vector<std::pair<std::string, std::string>> attrs = {{"out", std::to_string(cout)},
                                                            {"kernel", std::to_string(c.kernel)}};
  if (c.stride != 1) attrs.emplace_back("stride", std::to_string(c.stride));
  attrs.emplace_back("pad", std::to_string(c.pad));
  if (output_pad != 0) attrs.emplace_back("output_pad", std::to_string(output_pad));
  if (!bias) attrs.emplace_back("bias", "false");
  emit_conv("conv_transpose2d", "deconv", x, attrs, w, bias, {x.shape[0], cout, ho, wo});
}

void Importer::import_batch_norm() {
  if (version_ < 7 && attr_int("is_test", 0) == 0)
    fail_unsupported(
        "is_test = 0 (training mode) is not supported: the importer reads "
        "inference graphs (running statistics)");
  if (version_ < 9 && attr_int("spatial", 1) != 1)
    fail_unsupported("spatial = 0 (statistics per element, not per channel) is not supported");
  if (attr_int("training_mode", 0) != 0)
    fail_unsupported(
        "training_mode = 1 is not supported: the importer reads inference graphs "
        "(running statistics)");
  require_outputs(1, "the running mean / variance outputs exist in training mode only");
  const Value& x = runtime(0, "input");
  if (x.shape.size() != 2 && x.shape.size() != 4)
    fail_unsupported("BatchNormalization of a " + std::to_string(x.shape.size()) + "-D input " +
                     dims_str(x.shape) +
                     " is not supported (the engine normalises [N, C] or [N, C, H, W])");
  const int64_t channels = x.shape[1];
  const char* roles[] = {"scale", "B", "mean", "var"};
  const char* params[] = {"gamma", "beta", "running_mean", "running_var"};
  std::vector<std::vector<float>> data;
  for (int i = 0; i < 4; ++i) {
    const onnx::TensorProto& t = constant(i + 1, roles[i]);
    if (dims_of(t) != Shape{channels})
      fail_format(std::string(roles[i]) + " '" + printable(input(i + 1)) + "' is " +
                  dims_str(dims_of(t)) + ", the input " + dims_str(x.shape) + " has " +
                  std::to_string(channels) + " channels");
    data.push_back(floats(t, std::string(roles[i]) + " '" + printable(input(i + 1)) + "'"));
  }
  const float eps = attr_float("epsilon", 1e-5f);
  const float momentum = attr_float("momentum", 0.9f);
  if (!(eps >= 0)) fail_format("epsilon " + toml_float(eps) + " must be >= 0");
  if (!(momentum >= 0 && momentum <= 1))
    fail_unsupported("momentum " + toml_float(momentum) + " is outside [0, 1]");
  const std::string name = engine_name(index_, "bn");
  // ONNX: running = momentum * running + (1 - momentum) * batch; the engine (PyTorch) weighs
  // the batch by its momentum.
  emit("batch_norm", name, {x.engine},
       {{"eps", toml_float(eps)}, {"momentum", toml_float_rounded(1.0 - momentum)}}, {index_});
  for (int i = 0; i < 4; ++i) add_weight(name, params[i], {channels}, std::move(data[i]));
  define(0, {name, x.shape});
}

}  // namespace emt::onnx_import
