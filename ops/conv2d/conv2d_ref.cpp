#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ops/conv2d/conv2d.h"
#include "ops/core/parallel.h"

namespace emt {
namespace {

using conv_detail::gather_row;
using conv_detail::kChannelBlock;
using conv_detail::TapPlan;
using conv_detail::TapRange;

// Below this many positions per plane, pointwise rows are too short to amortise a pass over
// them, so channel_mix moves the batch into the row.
constexpr int64_t kMinPlaneRow = 64;
// Channels per pass over a pointwise row: contiguous rows run fastest with 8 (measured), the
// often strided tap loops with kChannelBlock.
constexpr int kMixBlock = 8;

// dst[j * dst_step] += sum_q weights[q] * src[q * src_channel + j] for j < len.
template <int Q>
void scatter_row(float* dst, int64_t dst_step, const float* src, int64_t src_channel,
                 const float* weights, int64_t len) {
  if (dst_step == 1) {
    gather_row<Q>(dst, src, src_channel, 1, weights, len);
    return;
  }
  float w[Q];
  for (int q = 0; q < Q; ++q) w[q] = weights[q];
  for (int64_t j = 0; j < len; ++j) {
    float sum = w[0] * src[j];
    for (int q = 1; q < Q; ++q) sum += w[q] * src[q * src_channel + j];
    dst[j * dst_step] += sum;
  }
}

// dst[j] += sum_kw w[kw] * src[j * step + kw] for j < len: one filter row in one pass when
// the row is MobileNet's 3 taps.
void filter_row(float* dst, const float* src, int64_t step, const float* w, int64_t k,
                int64_t len) {
  if (k == 3) {
    gather_row<3>(dst, src, 1, step, w, len);
    return;
  }
  for (int64_t kw = 0; kw < k; ++kw) gather_row<1>(dst, src + kw, 1, step, w + kw, len);
}

std::string padding_str(const ConvPadding& p) {
  if (p.symmetric()) return std::to_string(p.top);
  return "[top " + std::to_string(p.top) + ", left " + std::to_string(p.left) + ", bottom " +
         std::to_string(p.bottom) + ", right " + std::to_string(p.right) + "]";
}

std::string geometry_str(const ConvGeometry& g) {
  return "kernel=" + std::to_string(g.kernel) + " stride=" + std::to_string(g.stride) +
         " pad=" + padding_str(g.padding());
}

// TF SAME along one axis: {before, after}.
std::pair<int64_t, int64_t> same_tf_axis(int64_t in, int64_t kernel, int64_t stride) {
  const int64_t out = (in + stride - 1) / stride;
  const int64_t total = std::max<int64_t>((out - 1) * stride + kernel - in, 0);
  return {total / 2, total - total / 2};
}

// out (one plane of y) += the Q consecutive input planes at in, each through its K x K filter;
// filter q starts at w + q * w_channel.
template <int Q>
void gather_taps(const ConvGeometry& g, const TapPlan& taps, const float* in, const float* w,
                 int64_t w_channel, float* out) {
  const int64_t k = g.kernel, in_plane = g.h * g.w;
  for (int64_t kh = 0; kh < k; ++kh) {
    const TapRange rows = taps.rows[kh];
    for (int64_t kw = 0; kw < k; ++kw) {
      const TapRange cols = taps.cols[kw];
      if (cols.size() <= 0) continue;
      float tap[Q];
      for (int q = 0; q < Q; ++q) tap[q] = w[q * w_channel + kh * k + kw];
      const int64_t iw = cols.first * g.stride - g.pad_left + kw;
      for (int64_t oh = rows.first; oh < rows.last; ++oh) {
        const int64_t ih = oh * g.stride - g.pad_top + kh;
        gather_row<Q>(out + oh * g.wo + cols.first, in + ih * g.w + iw, in_plane, g.stride, tap,
                      cols.size());
      }
    }
  }
}

// The transpose of gather_taps: out (one plane of x) += the Q consecutive planes of y at in,
// each spread back through its filter.
template <int Q>
void scatter_taps(const ConvGeometry& g, const TapPlan& taps, const float* in, const float* w,
                  int64_t w_channel, float* out) {
  const int64_t k = g.kernel, out_plane = g.ho * g.wo;
  for (int64_t kh = 0; kh < k; ++kh) {
    const TapRange rows = taps.rows[kh];
    for (int64_t kw = 0; kw < k; ++kw) {
      const TapRange cols = taps.cols[kw];
      if (cols.size() <= 0) continue;
      float tap[Q];
      for (int q = 0; q < Q; ++q) tap[q] = w[q * w_channel + kh * k + kw];
      const int64_t iw = cols.first * g.stride - g.pad_left + kw;
      for (int64_t oh = rows.first; oh < rows.last; ++oh) {
        const int64_t ih = oh * g.stride - g.pad_top + kh;
        scatter_row<Q>(out + ih * g.w + iw, g.stride, in + oh * g.wo + cols.first, out_plane, tap,
                       cols.size());
      }
    }
  }
}

// dst[:len] += sum_i mix[i * mix_step] * src[i * src_row + :len] over `channels` rows.
void mix_row(float* dst, const float* src, int64_t src_row, const float* mix, int64_t mix_step,
             int64_t channels, int64_t len) {
  int64_t i = 0;
  for (; i + kMixBlock <= channels; i += kMixBlock) {
    float m[kMixBlock];
    for (int q = 0; q < kMixBlock; ++q) m[q] = mix[(i + q) * mix_step];
    gather_row<kMixBlock>(dst, src + i * src_row, src_row, 1, m, len);
  }
  for (; i < channels; ++i)
    gather_row<1>(dst, src + i * src_row, src_row, 1, mix + i * mix_step, len);
}

// The ungrouped pointwise conv (forward and input gradient alike): out[n, o, :] =
// act(bias[o] + sum_i mix(o, i) * in[n, i, :]) with mix(o, i) = mix[o * mix_out + i * mix_in],
// or out += the sum when accumulate. Parallel over n * out_ch rows, or over out_ch for small
// planes.
void channel_mix(int64_t batch, int64_t plane, int64_t in_ch, int64_t out_ch, const float* in,
                 const float* mix, int64_t mix_out, int64_t mix_in, const float* bias, float* out,
                 bool accumulate, ConvActivation act) {
  if (plane >= kMinPlaneRow) {
    parallel_for(batch * out_ch, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        const int64_t n = row / out_ch, o = row % out_ch;
        float* dst = out + row * plane;
        if (!accumulate) std::fill(dst, dst + plane, bias ? bias[o] : 0.0f);
        mix_row(dst, in + n * in_ch * plane, plane, mix + o * mix_out, mix_in, in_ch, plane);
        if (!accumulate) apply_conv_activation(act, dst, plane);
      }
    });
    return;
  }
  // in as [in_ch, batch * plane]: each row then holds the whole batch.
  const int64_t len = batch * plane;
  const std::unique_ptr<float[]> packed(new float[in_ch * len]);
  parallel_for(in_ch, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      for (int64_t n = 0; n < batch; ++n)
        std::copy_n(in + (n * in_ch + i) * plane, plane, packed.get() + i * len + n * plane);
  });
  parallel_for(out_ch, [&](int64_t begin, int64_t end) {
    std::vector<float> row(len);
    for (int64_t o = begin; o < end; ++o) {
      std::fill(row.begin(), row.end(), !accumulate && bias ? bias[o] : 0.0f);
      mix_row(row.data(), packed.get(), len, mix + o * mix_out, mix_in, in_ch, len);
      if (!accumulate) apply_conv_activation(act, row.data(), len);
      for (int64_t n = 0; n < batch; ++n) {
        float* dst = out + (n * out_ch + o) * plane;
        const float* src = row.data() + n * plane;
        if (accumulate) {
          for (int64_t p = 0; p < plane; ++p) dst[p] += src[p];
        } else {
          std::copy_n(src, plane, dst);
        }
      }
    }
  });
}

// conv2d_gather for depthwise geometry: one padded input plane per output plane.
void depthwise_gather(const ConvGeometry& g, const float* x, const float* weight, const float* bias,
                      float* y, bool accumulate, ConvActivation act) {
  const int64_t k = g.kernel, s = g.stride;
  const int64_t rows = (g.ho - 1) * s + k, cols = (g.wo - 1) * s + k;  // what windows read
  parallel_for(g.n * g.cout, [&](int64_t begin, int64_t end) {
    std::vector<float> padded(rows * cols);
    for (int64_t plane = begin; plane < end; ++plane) {
      const int64_t c = plane % g.cout;
      float* out = y + plane * g.ho * g.wo;
      if (!accumulate) std::fill(out, out + g.ho * g.wo, bias ? bias[c] : 0.0f);
      conv_detail::pad_plane(x + plane * g.h * g.w, g.h, g.w, 1, padded.data(), rows, cols,
                             g.pad_top, g.pad_left);
      const float* w = weight + c * k * k;
      for (int64_t oh = 0; oh < g.ho; ++oh)
        for (int64_t kh = 0; kh < k; ++kh)
          filter_row(out + oh * g.wo, padded.data() + (oh * s + kh) * cols, s, w + kh * k, k, g.wo);
      if (!accumulate) apply_conv_activation(act, out, g.ho * g.wo);
    }
  });
}

// conv2d_scatter for depthwise geometry. With y's plane spread onto the input grid (stride
// apart, shifted by kernel-1-pad with the leading pad of each axis), x's side is an ordinary
// stride-1 correlation with the flipped filter: contiguous rows again, at the price of
// multiplying the zeros in between. (Spread positions past the grid, which only the trailing
// padding reads, drop out.)
void depthwise_scatter(const ConvGeometry& g, const float* y, const float* weight,
                       const float* bias, float* x, bool accumulate, ConvActivation act) {
  const int64_t k = g.kernel, rows = g.h + k - 1, cols = g.w + k - 1;
  const int64_t shift_top = k - 1 - g.pad_top, shift_left = k - 1 - g.pad_left;
  parallel_for(g.n * g.cin, [&](int64_t begin, int64_t end) {
    std::vector<float> spread(rows * cols), flipped(k * k);
    for (int64_t plane = begin; plane < end; ++plane) {
      const int64_t c = plane % g.cin;
      float* out = x + plane * g.h * g.w;
      if (!accumulate) std::fill(out, out + g.h * g.w, bias ? bias[c] : 0.0f);
      conv_detail::pad_plane(y + plane * g.ho * g.wo, g.ho, g.wo, g.stride, spread.data(), rows,
                             cols, shift_top, shift_left);
      std::reverse_copy(weight + c * k * k, weight + (c + 1) * k * k, flipped.begin());
      for (int64_t ih = 0; ih < g.h; ++ih)
        for (int64_t kh = 0; kh < k; ++kh)
          filter_row(out + ih * g.w, spread.data() + (ih + kh) * cols, 1, flipped.data() + kh * k,
                     k, g.w);
      if (!accumulate) apply_conv_activation(act, out, g.h * g.w);
    }
  });
}

}  // namespace

ConvActivation parse_conv_activation(const std::string& op, const std::string& name) {
  if (name == "none") return ConvActivation::kNone;
  if (name == "relu") return ConvActivation::kRelu;
  if (name == "relu6") return ConvActivation::kRelu6;
  throw OpError(op + ": activation='" + name + "' must be one of none, relu, relu6");
}

const char* conv_activation_name(ConvActivation activation) {
  switch (activation) {
    case ConvActivation::kRelu:
      return "relu";
    case ConvActivation::kRelu6:
      return "relu6";
    case ConvActivation::kNone:
      break;
  }
  return "none";
}

void apply_conv_activation(ConvActivation activation, float* data, int64_t n) {
  switch (activation) {
    case ConvActivation::kNone:
      break;
    case ConvActivation::kRelu:
      for (int64_t i = 0; i < n; ++i) data[i] = data[i] > 0.0f ? data[i] : 0.0f;
      break;
    case ConvActivation::kRelu6:
      for (int64_t i = 0; i < n; ++i) data[i] = std::min(std::max(data[i], 0.0f), 6.0f);
      break;
  }
}

ConvPadMode parse_conv_pad_mode(const std::string& op, const std::string& name) {
  if (name == "explicit") return ConvPadMode::kExplicit;
  if (name == "same_tf") return ConvPadMode::kSameTf;
  throw OpError(op + ": pad_mode='" + name + "' must be one of explicit, same_tf");
}

ConvPadding resolve_conv_padding(ConvPadMode mode, int64_t pad, int64_t kernel, int64_t stride,
                                 int64_t h, int64_t w) {
  if (mode == ConvPadMode::kSameTf) {
    const auto [top, bottom] = same_tf_axis(h, kernel, stride);
    const auto [left, right] = same_tf_axis(w, kernel, stride);
    return {top, left, bottom, right};
  }
  const int64_t p = pad == -1 ? (kernel - 1) / 2 : pad;
  return {p, p, p, p};
}

ConvPadding conv2d_padding(const Attrs& attrs, int64_t h, int64_t w) {
  return resolve_conv_padding(parse_conv_pad_mode("conv2d", attrs.get_string("pad_mode")),
                              attrs.get_int("pad"), attrs.get_int("kernel"),
                              attrs.get_int("stride"), h, w);
}

void require_no_activation(const std::string& op, ConvActivation activation) {
  if (activation != ConvActivation::kNone)
    throw OpError(op + ": backward of activation='" + conv_activation_name(activation) +
                  "' is not supported; the attribute is for inference (train the unfused graph)");
}

void conv2d_gather(const ConvGeometry& geometry, const float* x, const float* weight,
                   const float* bias, float* y, bool accumulate, ConvActivation act) {
  const ConvGeometry g = conv_detail::flatten_pointwise(geometry);
  if (g.groups == 1 && conv_detail::is_pointwise(g)) {
    channel_mix(g.n, g.w, g.cin, g.cout, x, weight, g.cin, 1, bias, y, accumulate, act);
    return;
  }
  if (conv_detail::is_depthwise(g)) {
    depthwise_gather(g, x, weight, bias, y, accumulate, act);
    return;
  }
  const TapPlan taps(g);
  const int64_t cin_g = g.cin / g.groups, cout_g = g.cout / g.groups;
  const int64_t kk = g.kernel * g.kernel, in_plane = g.h * g.w, out_plane = g.ho * g.wo;
  parallel_for(g.n * g.cout, [&](int64_t begin, int64_t end) {
    for (int64_t plane = begin; plane < end; ++plane) {
      const int64_t n = plane / g.cout, co = plane % g.cout;
      float* out = y + plane * out_plane;
      if (!accumulate) std::fill(out, out + out_plane, bias ? bias[co] : 0.0f);
      const float* in = x + (n * g.cin + co / cout_g * cin_g) * in_plane;
      const float* w = weight + co * cin_g * kk;
      int64_t ci = 0;
      for (; ci + kChannelBlock <= cin_g; ci += kChannelBlock)
        gather_taps<kChannelBlock>(g, taps, in + ci * in_plane, w + ci * kk, kk, out);
      for (; ci < cin_g; ++ci) gather_taps<1>(g, taps, in + ci * in_plane, w + ci * kk, kk, out);
      if (!accumulate) apply_conv_activation(act, out, out_plane);
    }
  });
}

void conv2d_scatter(const ConvGeometry& geometry, const float* y, const float* weight,
                    const float* bias, float* x, bool accumulate, ConvActivation act) {
  const ConvGeometry g = conv_detail::flatten_pointwise(geometry);
  if (g.groups == 1 && conv_detail::is_pointwise(g)) {
    channel_mix(g.n, g.w, g.cout, g.cin, y, weight, 1, g.cin, bias, x, accumulate, act);
    return;
  }
  if (conv_detail::is_depthwise(g)) {
    depthwise_scatter(g, y, weight, bias, x, accumulate, act);
    return;
  }
  const TapPlan taps(g);
  const int64_t cin_g = g.cin / g.groups, cout_g = g.cout / g.groups;
  const int64_t kk = g.kernel * g.kernel, in_plane = g.h * g.w, out_plane = g.ho * g.wo;
  const int64_t w_channel = cin_g * kk;  // between the filters of consecutive output channels
  parallel_for(g.n * g.cin, [&](int64_t begin, int64_t end) {
    for (int64_t plane = begin; plane < end; ++plane) {
      const int64_t n = plane / g.cin, ci = plane % g.cin, group = ci / cin_g;
      float* out = x + plane * in_plane;
      if (!accumulate) std::fill(out, out + in_plane, bias ? bias[ci] : 0.0f);
      const float* in = y + (n * g.cout + group * cout_g) * out_plane;
      const float* w = weight + (group * cout_g * cin_g + ci % cin_g) * kk;
      int64_t co = 0;
      for (; co + kChannelBlock <= cout_g; co += kChannelBlock)
        scatter_taps<kChannelBlock>(g, taps, in + co * out_plane, w + co * w_channel, w_channel,
                                    out);
      for (; co < cout_g; ++co)
        scatter_taps<1>(g, taps, in + co * out_plane, w + co * w_channel, w_channel, out);
      if (!accumulate) apply_conv_activation(act, out, in_plane);
    }
  });
}

Conv2dOp::Conv2dOp(const Attrs& attrs)
    : out_(attrs.get_int("out")),
      kernel_(attrs.get_int("kernel")),
      stride_(attrs.get_int("stride")),
      pad_(attrs.get_int("pad")),
      groups_(attrs.get_int("groups")),
      pad_mode_(parse_conv_pad_mode("conv2d", attrs.get_string("pad_mode"))),
      depthwise_(attrs.get_bool("depthwise")),
      bias_(attrs.get_bool("bias")),
      activation_(parse_conv_activation("conv2d", attrs.get_string("activation"))) {
  if (kernel_ < 1) throw OpError("conv2d: kernel=" + std::to_string(kernel_) + " must be >= 1");
  if (stride_ < 1) throw OpError("conv2d: stride=" + std::to_string(stride_) + " must be >= 1");
  if (pad_ < -1)
    throw OpError("conv2d: pad=" + std::to_string(pad_) + " must be >= 0 (or -1 for automatic)");
  if (pad_mode_ == ConvPadMode::kSameTf && pad_ != -1)
    throw OpError("conv2d: pad=" + std::to_string(pad_) +
                  " contradicts pad_mode='same_tf', which derives the padding from the input "
                  "size; leave pad unset");
  if (groups_ < 1) throw OpError("conv2d: groups=" + std::to_string(groups_) + " must be >= 1");
  if (out_ < 0)
    throw OpError("conv2d: out=" + std::to_string(out_) + " must be >= 1 (or 0 with depthwise)");
  if (out_ == 0 && !depthwise_)
    throw OpError("conv2d: attribute 'out' is required unless depthwise=true");
}

ConvGeometry Conv2dOp::geometry(const Shape& input) const {
  if (input.size() != 4)
    throw OpError("conv2d: input " + shape_str(input) + " must have rank 4 [N,C,H,W]");
  if (shape_numel(input) < 1)
    throw OpError("conv2d: input " + shape_str(input) + " has an empty dimension");
  ConvGeometry g;
  g.n = input[0];
  g.cin = input[1];
  g.h = input[2];
  g.w = input[3];
  g.kernel = kernel_;
  g.stride = stride_;
  g.set_padding(resolve_conv_padding(pad_mode_, pad_, kernel_, stride_, g.h, g.w));
  g.groups = groups_;
  g.cout = out_;
  if (depthwise_) {
    // Explicit out/groups are allowed only when they agree with what depthwise implies.
    if (groups_ != 1 && groups_ != g.cin)
      throw OpError("conv2d: depthwise on input " + shape_str(input) + " needs groups=" +
                    std::to_string(g.cin) + " (or unset), got groups=" + std::to_string(groups_));
    if (out_ != 0 && out_ != g.cin)
      throw OpError("conv2d: depthwise on input " + shape_str(input) + " needs out=" +
                    std::to_string(g.cin) + " (or unset), got out=" + std::to_string(out_));
    g.groups = g.cout = g.cin;
  }
  if (g.cin % g.groups != 0)
    throw OpError("conv2d: input " + shape_str(input) + " has " + std::to_string(g.cin) +
                  " channels, not divisible by groups=" + std::to_string(g.groups));
  if (g.cout % g.groups != 0)
    throw OpError("conv2d: out=" + std::to_string(g.cout) + " is not divisible by groups=" +
                  std::to_string(g.groups) + " (input " + shape_str(input) + ")");
  const int64_t padded_h = g.h + g.pad_top + g.pad_bottom,
                padded_w = g.w + g.pad_left + g.pad_right;
  g.ho = (padded_h - g.kernel) / g.stride + 1;
  g.wo = (padded_w - g.kernel) / g.stride + 1;
  // The first test catches a negative numerator, which C++ division rounds towards zero.
  if (padded_h < g.kernel || padded_w < g.kernel || g.ho < 1 || g.wo < 1)
    throw OpError("conv2d: input " + shape_str(input) + " is smaller than the " + geometry_str(g) +
                  " window; the output would be empty");
  return g;
}

Inferred Conv2dOp::infer(std::span<const Shape> inputs) const {
  const ConvGeometry g = geometry(inputs[0]);
  const int64_t cin_g = g.cin / g.groups, kk = g.kernel * g.kernel;
  Inferred inferred;
  inferred.outputs = {{g.n, g.cout, g.ho, g.wo}};
  inferred.params.push_back(
      {"weight", {g.cout, cin_g, g.kernel, g.kernel}, ParamInit::kHeNormal, cin_g * kk});
  if (bias_) inferred.params.push_back({"bias", {g.cout}, ParamInit::kZeros, 1});
  inferred.macs_per_sample = g.cout * g.ho * g.wo * cin_g * kk;
  return inferred;
}

void Conv2dOp::forward(const ForwardArgs& args) {
  const ConvGeometry g = geometry(args.inputs[0].shape);
  const float* bias = bias_ ? args.params[1].data : nullptr;
  conv2d_gather(g, args.inputs[0].data, args.params[0].data, bias, args.outputs[0].data, false,
                activation_);
}

const OpSchema& conv2d_schema() {
  static const OpSchema schema{
      "conv2d",
      "2-D convolution (cross-correlation) over NCHW: [N,Cin,H,W] -> [N,out,Ho,Wo], "
      "Ho = (H + pad_top + pad_bottom - kernel) / stride + 1 (explicit: pad on every side; "
      "same_tf: Ho = ceil(H / stride))",
      1,
      1,
      {
          {"out", AttrType::kInt, AttrValue{int64_t{0}},
           "output channels; required unless depthwise"},
          {"kernel", AttrType::kInt, std::nullopt, "square kernel size"},
          {"stride", AttrType::kInt, AttrValue{int64_t{1}}, "step of the window"},
          {"pad", AttrType::kInt, AttrValue{int64_t{-1}},
           "zero padding on each side; -1 means (kernel-1)/2, which keeps the size at stride 1 "
           "for odd kernels. Only with pad_mode = explicit"},
          {"pad_mode", AttrType::kString, AttrValue{std::string("explicit")},
           "explicit (pad on every side) or same_tf (TensorFlow SAME: total padding "
           "max((ceil(H/stride)-1)*stride + kernel - H, 0) per axis, half before, the rest "
           "after; for weights trained in TensorFlow)"},
          {"groups", AttrType::kInt, AttrValue{int64_t{1}},
           "channel groups; input and output channels must both be divisible by it"},
          {"depthwise", AttrType::kBool, AttrValue{false},
           "one filter per input channel: groups = out = input channels"},
          {"bias", AttrType::kBool, AttrValue{true}, "adds a learned per-channel bias"},
          {"activation", AttrType::kString, AttrValue{std::string("none")},
           "none, relu or relu6, applied after the bias; inference only (backward rejects it): "
           "the compiler sets it when it fuses a following activation"},
      },
      [](const Attrs& attrs) -> std::unique_ptr<Op> { return std::make_unique<Conv2dOp>(attrs); }};
  return schema;
}

}  // namespace emt
