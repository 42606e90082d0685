#include <algorithm>
#include <memory>
#include <vector>

#include "ops/conv2d/conv2d.h"
#include "ops/core/parallel.h"

namespace emt {
namespace {

using conv_detail::gather_row;
using conv_detail::kChannelBlock;
using conv_detail::TapPlan;
using conv_detail::TapRange;

// From this many input channels per group, channels_last_weight_grad's rows are long enough
// to beat dot products over the short rows of a plane.
constexpr int64_t kMinChannelsLast = 8;
constexpr int64_t kOutBlock = 16;
constexpr int64_t kTransposeTile = 16;

// sum_j a[j] * b[j * b_step]. Four running sums, because a single one is a dependency chain
// the compiler may not reorder (float addition is not associative).
float dot_row(const float* a, const float* b, int64_t b_step, int64_t len) {
  float s[4] = {0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 4 <= len; j += 4)
    for (int l = 0; l < 4; ++l) s[l] += a[j + l] * b[(j + l) * b_step];
  for (; j < len; ++j) s[0] += a[j] * b[j * b_step];
  return (s[0] + s[1]) + (s[2] + s[3]);
}

// Four running sums for the same reason as dot_row.
float sum_row(const float* a, int64_t len) {
  float s[4] = {0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 4 <= len; j += 4)
    for (int l = 0; l < 4; ++l) s[l] += a[j + l];
  for (; j < len; ++j) s[0] += a[j];
  return (s[0] + s[1]) + (s[2] + s[3]);
}

// acc[j] += a[j] * b[j * b_step] for j < len.
void product_row(float* acc, const float* a, const float* b, int64_t b_step, int64_t len) {
  if (b_step == 1) {  // a separate loop the compiler can vectorise
    for (int64_t j = 0; j < len; ++j) acc[j] += a[j] * b[j];
  } else {
    for (int64_t j = 0; j < len; ++j) acc[j] += a[j] * b[j * b_step];
  }
}

// grad_w[co, :, kh, kw] += sum over n, oh, ow of grad_y[n, co, oh, ow] * x[n, :, ih, iw].
// With x copied channels-last each term is a contiguous row update over the group's input
// channels: no reduction is left in the inner loop (reductions do not vectorise) and rows are
// as long as the channel count rather than the plane width. The copy costs 1/cout of the
// multiply-adds.
void channels_last_weight_grad(const ConvGeometry& g, const float* x, const float* grad_y,
                               float* grad_weight) {
  const TapPlan taps(g);
  const int64_t cin_g = g.cin / g.groups, cout_g = g.cout / g.groups, k = g.kernel;
  const int64_t kk = k * k, in_plane = g.h * g.w, out_plane = g.ho * g.wo;
  const std::unique_ptr<float[]> x_t(new float[g.n * in_plane * g.cin]);
  parallel_for(g.n, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      const float* src = x + n * g.cin * in_plane;
      float* dst = x_t.get() + n * in_plane * g.cin;
      // Tiles of channels, so each write fills part of a cache line instead of one float.
      for (int64_t c0 = 0; c0 < g.cin; c0 += kTransposeTile) {
        const int64_t c1 = std::min(g.cin, c0 + kTransposeTile);
        for (int64_t p = 0; p < in_plane; ++p)
          for (int64_t c = c0; c < c1; ++c) dst[p * g.cin + c] = src[c * in_plane + p];
      }
    }
  });
  const int64_t ow_step = g.stride * g.cin;  // between the x_t rows of consecutive ow
  parallel_for(g.cout, [&](int64_t begin, int64_t end) {
    std::vector<float> acc;  // [co, kh, kw, ci]: the layout the row updates need
    // Blocks of output channels share each pass over x_t[n], which would not stay in cache
    // across a whole batch.
    for (int64_t block = begin; block < end; block += kOutBlock) {
      const int64_t block_end = std::min(end, block + kOutBlock);
      acc.assign((block_end - block) * kk * cin_g, 0.0f);
      for (int64_t n = 0; n < g.n; ++n) {
        for (int64_t co = block; co < block_end; ++co) {
          const float* dy = grad_y + (n * g.cout + co) * out_plane;
          const float* xt = x_t.get() + n * in_plane * g.cin + co / cout_g * cin_g;
          for (int64_t kh = 0; kh < k; ++kh) {
            const TapRange rows = taps.rows[kh];
            for (int64_t kw = 0; kw < k; ++kw) {
              const TapRange cols = taps.cols[kw];
              float* dst = acc.data() + ((co - block) * kk + kh * k + kw) * cin_g;
              const int64_t iw = cols.first * g.stride - g.pad_left + kw;
              for (int64_t oh = rows.first; oh < rows.last; ++oh) {
                const float* dy_row = dy + oh * g.wo + cols.first;
                const float* x_row = xt + ((oh * g.stride - g.pad_top + kh) * g.w + iw) * g.cin;
                int64_t j = 0;
                for (; j + kChannelBlock <= cols.size(); j += kChannelBlock)
                  gather_row<kChannelBlock>(dst, x_row + j * ow_step, ow_step, 1, dy_row + j,
                                            cin_g);
                for (; j < cols.size(); ++j)
                  gather_row<1>(dst, x_row + j * ow_step, ow_step, 1, dy_row + j, cin_g);
              }
            }
          }
        }
      }
      for (int64_t co = block; co < block_end; ++co) {
        float* dw = grad_weight + co * cin_g * kk;
        const float* src = acc.data() + (co - block) * kk * cin_g;
        for (int64_t ci = 0; ci < cin_g; ++ci)
          for (int64_t t = 0; t < kk; ++t) dw[ci * kk + t] += src[t * cin_g + ci];
      }
    }
  });
}

// The same sum for few channels per group (RGB input, small groups), as one dot product per
// weight over the rows of the plane.
void planar_weight_grad(const ConvGeometry& g, const float* x, const float* grad_y,
                        float* grad_weight) {
  const TapPlan taps(g);
  const int64_t cin_g = g.cin / g.groups, cout_g = g.cout / g.groups, k = g.kernel;
  const int64_t kk = k * k, in_plane = g.h * g.w, out_plane = g.ho * g.wo;
  parallel_for(g.cout, [&](int64_t begin, int64_t end) {
    for (int64_t co = begin; co < end; ++co) {
      float* dw = grad_weight + co * cin_g * kk;
      for (int64_t n = 0; n < g.n; ++n) {
        const float* dy = grad_y + (n * g.cout + co) * out_plane;
        const float* in = x + (n * g.cin + co / cout_g * cin_g) * in_plane;
        for (int64_t ci = 0; ci < cin_g; ++ci) {
          for (int64_t kh = 0; kh < k; ++kh) {
            const TapRange rows = taps.rows[kh];
            for (int64_t kw = 0; kw < k; ++kw) {
              const TapRange cols = taps.cols[kw];
              if (cols.size() <= 0) continue;
              const int64_t iw = cols.first * g.stride - g.pad_left + kw;
              float sum = 0;
              for (int64_t oh = rows.first; oh < rows.last; ++oh) {
                const int64_t ih = oh * g.stride - g.pad_top + kh;
                sum += dot_row(dy + oh * g.wo + cols.first, in + ci * in_plane + ih * g.w + iw,
                               g.stride, cols.size());
              }
              dw[ci * kk + kh * k + kw] += sum;
            }
          }
        }
      }
    }
  });
}

// The depthwise weight gradient on padded input planes (see conv_detail::is_depthwise): one
// running row of products per filter tap, reduced once per channel at the end.
void depthwise_weight_grad(const ConvGeometry& g, const float* x, const float* grad_y,
                           float* grad_weight) {
  const int64_t k = g.kernel, kk = k * k, s = g.stride;
  const int64_t rows = (g.ho - 1) * s + k, cols = (g.wo - 1) * s + k;  // what windows read
  parallel_for(g.cout, [&](int64_t begin, int64_t end) {
    std::vector<float> padded(rows * cols), acc(kk * g.wo);
    for (int64_t c = begin; c < end; ++c) {
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t n = 0; n < g.n; ++n) {
        conv_detail::pad_plane(x + (n * g.cin + c) * g.h * g.w, g.h, g.w, 1, padded.data(), rows,
                               cols, g.pad_top, g.pad_left);
        const float* dy = grad_y + (n * g.cout + c) * g.ho * g.wo;
        for (int64_t oh = 0; oh < g.ho; ++oh)
          for (int64_t kh = 0; kh < k; ++kh)
            for (int64_t kw = 0; kw < k; ++kw)
              product_row(acc.data() + (kh * k + kw) * g.wo, dy + oh * g.wo,
                          padded.data() + (oh * s + kh) * cols + kw, s, g.wo);
      }
      for (int64_t t = 0; t < kk; ++t)
        grad_weight[c * kk + t] += sum_row(acc.data() + t * g.wo, g.wo);
    }
  });
}

}  // namespace

void conv2d_weight_grad(const ConvGeometry& geometry, const float* x, const float* grad_y,
                        float* grad_weight) {
  const ConvGeometry g = conv_detail::flatten_pointwise(geometry);
  if (g.cin / g.groups >= kMinChannelsLast)
    channels_last_weight_grad(g, x, grad_y, grad_weight);
  else if (conv_detail::is_depthwise(g))
    depthwise_weight_grad(g, x, grad_y, grad_weight);
  else
    planar_weight_grad(g, x, grad_y, grad_weight);
}

void conv2d_channel_sums(const float* t, int64_t n, int64_t channels, int64_t plane, float* sums) {
  parallel_for(channels, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      float sum = 0;
      for (int64_t i = 0; i < n; ++i) sum += sum_row(t + (i * channels + c) * plane, plane);
      sums[c] += sum;
    }
  });
}

void Conv2dOp::backward(const BackwardArgs& args) {
  require_no_activation("conv2d", activation_);
  const ConvGeometry g = geometry(args.inputs[0].shape);
  const float* grad_y = args.grad_outputs[0].data;
  if (!args.grad_inputs[0].empty())
    conv2d_scatter(g, grad_y, args.params[0].data, nullptr, args.grad_inputs[0].data, true);
  if (!args.grad_params[0].empty())
    conv2d_weight_grad(g, args.inputs[0].data, grad_y, args.grad_params[0].data);
  if (bias_ && !args.grad_params[1].empty())
    conv2d_channel_sums(grad_y, g.n, g.cout, g.ho * g.wo, args.grad_params[1].data);
}

}  // namespace emt
