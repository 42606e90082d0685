// conv2d: 2-D cross-correlation over NCHW input, optionally grouped or depthwise (MobileNet's
// 3x3 depthwise + 1x1 pointwise pairs). The kernels below are shared with conv_transpose2d,
// whose forward is conv2d's input gradient and whose input gradient is conv2d's forward.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "ops/core/op.h"

namespace emt {

const OpSchema& conv2d_schema();

// The `activation` attribute of conv2d and conv_transpose2d, applied after the bias. It exists
// for the compiler's inference fusion (a relu that was the convolution's only reader), so it
// is forward-only: training runs the unfused graph, and no caller needs a backward that masks
// gradients by the activation's derivative.
enum class ConvActivation { kNone, kRelu, kRelu6 };

// Throws OpError, prefixed with op, naming the accepted values.
ConvActivation parse_conv_activation(const std::string& op, const std::string& name);
const char* conv_activation_name(ConvActivation activation);
// Elementwise in place, with the relu and relu6 ops' exact formulas (so fused and unfused
// programs agree to the bit on this step).
void apply_conv_activation(ConvActivation activation, float* data, int64_t n);
// Throws OpError, prefixed with op, unless activation is kNone: for every backward.
void require_no_activation(const std::string& op, ConvActivation activation);

// How conv2d pads its input (the `pad_mode` attribute).
enum class ConvPadMode {
  kExplicit,  // `pad` zeros on every side (-1: (kernel-1)/2)
  // TensorFlow's "SAME": output ceil(in / stride), total padding
  // max((ceil(in / stride) - 1) * stride + kernel - in, 0) per axis, the odd one at the end
  // (bottom/right). A 3x3 stride-2 conv on an even input pads 0 before and 1 after.
  kSameTf,
};

// Throws OpError, prefixed with op, naming the accepted values.
ConvPadMode parse_conv_pad_mode(const std::string& op, const std::string& name);

// Zero rows/columns added before (top, left) and after (bottom, right) the input.
struct ConvPadding {
  int64_t top = 0, left = 0, bottom = 0, right = 0;
  bool symmetric() const { return top == bottom && left == right && top == left; }
};

// The padding conv2d applies to an h x w input: for kExplicit, pad on every side (-1 means
// (kernel-1)/2); for kSameTf, TF SAME per axis (pad is then ignored).
ConvPadding resolve_conv_padding(ConvPadMode mode, int64_t pad, int64_t kernel, int64_t stride,
                                 int64_t h, int64_t w);
// The same from a complete set of conv2d attributes (kernel, stride, pad, pad_mode): for code
// outside the op (exporters, importers, other backends) that must pad exactly as it does.
ConvPadding conv2d_padding(const Attrs& attrs, int64_t h, int64_t w);

// One conv2d in its own terms: x [n, cin, h, w] -> y [n, cout, ho, wo], weight
// [cout, cin / groups, kernel, kernel], y[oh, ow] reads x[oh * stride - pad_top + kh,
// ow * stride - pad_left + kw]. The kernels read only the leading pads: the trailing ones show
// in ho = (h + pad_top + pad_bottom - kernel) / stride + 1 (and wo likewise).
struct ConvGeometry {
  int64_t n = 1, cin = 1, h = 1, w = 1;
  int64_t cout = 1, ho = 1, wo = 1;
  int64_t kernel = 1, stride = 1, groups = 1;
  int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;

  void set_padding(const ConvPadding& p) {
    pad_top = p.top;
    pad_left = p.left;
    pad_bottom = p.bottom;
    pad_right = p.right;
  }
  ConvPadding padding() const { return {pad_top, pad_left, pad_bottom, pad_right}; }
};

// y = act(conv(x, weight) + bias) (bias may be null), or y += conv(x, weight) when accumulate
// (bias and activation unused). Parallel over n * cout output planes; each plane gets its
// activation while it is still in cache.
void conv2d_gather(const ConvGeometry& g, const float* x, const float* weight, const float* bias,
                   float* y, bool accumulate, ConvActivation act = ConvActivation::kNone);

// The adjoint of conv2d_gather: x = act(conv^T(y, weight) + bias) (bias over the cin channels,
// may be null), or x += conv^T(y, weight) when accumulate (bias and activation unused).
// Parallel over n * cin planes of x.
void conv2d_scatter(const ConvGeometry& g, const float* y, const float* weight, const float* bias,
                    float* x, bool accumulate, ConvActivation act = ConvActivation::kNone);

// grad_weight += d(sum(grad_y * conv(x, weight))) / d(weight). Parallel over cout, each task
// summing over the batch, so no two tasks write the same weight.
void conv2d_weight_grad(const ConvGeometry& g, const float* x, const float* grad_y,
                        float* grad_weight);

// sums[c] += sum over batch and plane of t[n, c, :]: the bias gradient. Parallel over channels.
void conv2d_channel_sums(const float* t, int64_t n, int64_t channels, int64_t plane, float* sums);

class Conv2dOp final : public Op {
 public:
  explicit Conv2dOp(const Attrs& attrs);

  Inferred infer(std::span<const Shape> inputs) const override;
  void forward(const ForwardArgs& args) override;
  void backward(const BackwardArgs& args) override;

  // Resolves depthwise and automatic padding against the input shape; throws OpError naming the
  // shape when it does not fit.
  ConvGeometry geometry(const Shape& input) const;
  ConvActivation activation() const { return activation_; }

 private:
  int64_t out_, kernel_, stride_, pad_, groups_;
  ConvPadMode pad_mode_;
  bool depthwise_, bias_;
  ConvActivation activation_;
};

// Loop helpers shared by the conv2d and conv_transpose2d kernels.
namespace conv_detail {

// Channels folded into one pass over a row: dst is loaded and stored once per kChannelBlock
// multiply-adds instead of once per multiply-add, which is what bounds these loops.
inline constexpr int kChannelBlock = 4;

// The output positions [first, last) whose tap o * stride - pad + k lies inside [0, in_size),
// pad being the leading padding of that axis.
struct TapRange {
  int64_t first, last;
  int64_t size() const { return last - first; }
};

// Every tap's range, computed once per call so that padding costs neither a branch in the
// inner loops nor divisions per plane (which would dominate at 4x4 planes).
struct TapPlan {
  std::vector<TapRange> rows, cols;  // indexed by kh, kw

  explicit TapPlan(const ConvGeometry& g) {
    for (int64_t k = 0; k < g.kernel; ++k) {
      rows.push_back(range(g.h, g.ho, g.stride, g.pad_top, k));
      cols.push_back(range(g.w, g.wo, g.stride, g.pad_left, k));
    }
  }

  static TapRange range(int64_t in_size, int64_t out_size, int64_t stride, int64_t pad, int64_t k) {
    const int64_t lowest = pad - k;  // o * stride must reach this
    const int64_t first = lowest > 0 ? (lowest + stride - 1) / stride : 0;
    const int64_t highest = in_size - 1 + pad - k;  // o * stride must not pass this
    const int64_t last = highest < 0 ? 0 : std::min(out_size, highest / stride + 1);
    return {first, std::max(first, last)};
  }
};

// A 1x1, stride-1, unpadded conv is a matrix product over whole planes: viewing each plane as
// one row makes the inner loops h * w long instead of w (4 at MobileNet's last stages).
inline bool is_pointwise(const ConvGeometry& g) {
  return g.kernel == 1 && g.stride == 1 && g.pad_top == 0 && g.pad_left == 0 && g.pad_bottom == 0 &&
         g.pad_right == 0 && g.h == g.ho && g.w == g.wo;
}

inline ConvGeometry flatten_pointwise(ConvGeometry g) {
  if (is_pointwise(g)) {
    g.w *= g.h;
    g.wo *= g.ho;
    g.h = g.ho = 1;
  }
  return g;
}

// dst[j] += sum_q weights[q] * src[q * src_channel + j * src_step] for j < len.
template <int Q>
inline void gather_row(float* dst, const float* src, int64_t src_channel, int64_t src_step,
                       const float* weights, int64_t len) {
  // Local copies: the compiler cannot prove weights does not alias dst.
  float w[Q];
  for (int q = 0; q < Q; ++q) w[q] = weights[q];
  if (src_step == 1) {  // a separate loop the compiler can vectorise
    for (int64_t j = 0; j < len; ++j) {
      float sum = w[0] * src[j];
      for (int q = 1; q < Q; ++q) sum += w[q] * src[q * src_channel + j];
      dst[j] += sum;
    }
  } else {
    for (int64_t j = 0; j < len; ++j) {
      float sum = w[0] * src[j * src_step];
      for (int q = 1; q < Q; ++q) sum += w[q] * src[q * src_channel + j * src_step];
      dst[j] += sum;
    }
  }
}

// Depthwise convs do only K*K multiply-adds per output: on MobileNet's 4x4 and 2x2 planes the
// per-tap bounds logic would cost more than the arithmetic. Their kernels work on a zero-padded
// copy of each plane instead, where every window is in bounds and one filter row is one pass.
inline bool is_depthwise(const ConvGeometry& g) { return g.groups == g.cin && g.groups == g.cout; }

// dst [rows, cols] = zeros with src [h, w] placed at dst[top + i * step][left + j * step].
// Elements landing outside dst are dropped: callers size dst to what their windows read.
inline void pad_plane(const float* src, int64_t h, int64_t w, int64_t step, float* dst,
                      int64_t rows, int64_t cols, int64_t top, int64_t left) {
  std::fill(dst, dst + rows * cols, 0.0f);
  const TapRange is = TapPlan::range(rows, h, step, -top, 0);
  const TapRange js = TapPlan::range(cols, w, step, -left, 0);
  for (int64_t i = is.first; i < is.last; ++i)
    for (int64_t j = js.first; j < js.last; ++j)
      dst[(top + i * step) * cols + left + j * step] = src[i * w + j];
}

}  // namespace conv_detail

}  // namespace emt
