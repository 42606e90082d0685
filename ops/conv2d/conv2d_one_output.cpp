#include "ops/conv2d/conv2d_one_output.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "ops/core/parallel.h"

// The project builds without -march so that one binary runs on any x86-64; the hot functions
// get AVX-512 and AVX2+FMA clones besides the baseline, chosen once at load time (ifunc).
#if defined(__x86_64__) && defined(__ELF__)
#define EMT_SIMD_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define EMT_SIMD_CLONES
#endif

namespace emt {
namespace {

using conv_detail::TapPlan;
using conv_detail::TapRange;

// GCC/Clang generic vectors: one AVX-512 register, two AVX2 ones, four SSE or NEON ones.
constexpr int kLanes = 16;
typedef float Vec __attribute__((vector_size(kLanes * sizeof(float))));
// A Vec at any float address: the unaligned, aliasing type GCC's own _mm512_loadu_ps uses.
typedef float VecView
    __attribute__((vector_size(kLanes * sizeof(float)), aligned(alignof(float)), may_alias));

inline const VecView& vec_at(const float* p) { return *reinterpret_cast<const VecView*>(p); }
inline VecView& vec_at(float* p) { return *reinterpret_cast<VecView*>(p); }

// Vectors of output pixels per forward and weight-gradient strip: four accumulators hide the
// FMA latency while leaving registers for the loads (AVX2 needs two per Vec).
constexpr int kStrip = 4;
// The input gradient keeps kSrcGradStrip x kSrcGradChannels accumulators, so each load of
// diff_dst feeds kSrcGradChannels multiply-adds.
constexpr int kSrcGradStrip = 2;
constexpr int kSrcGradChannels = 4;
// The forward's bands of output rows and channels per pass over them (see forward_rows).
constexpr int64_t kBandRows = 8;
constexpr int64_t kBandChannels = 8;
// Output rows per partial sum of the weight and bias gradients. Fixed (not per thread) so that
// the order of the additions, and hence the rounding, does not depend on the thread count.
constexpr int64_t kRowsPerPartial = 8;

// Columns x whose taps x * stride - pad + [0, size) all lie inside [0, in_size).
TapRange all_taps_inside(int64_t in_size, int64_t out_size, int64_t stride, int64_t pad,
                         int64_t size) {
  // range() leaves first past out_size when the leading padding alone spans the output.
  const int64_t first = std::min(out_size, TapPlan::range(in_size, out_size, stride, pad, 0).first);
  const int64_t last = TapPlan::range(in_size, out_size, stride, pad, size - 1).last;
  return {first, std::max(first, last)};
}

// The filter rows ky whose input row i0 + ky lies inside [0, h).
TapRange rows_inside(int64_t i0, int64_t h, int64_t kernel) {
  const int64_t first = std::max<int64_t>(0, -i0);
  return {first, std::max(first, std::min(kernel, h - i0))};
}

// dst[skip, kLanes) += acc[skip, kLanes). A row's last strip is placed to end at the row's
// end, overlapping the strip before it by skip lanes, so that no column falls to the scalar
// bounds-checked path (which costs more than a strip per column).
[[gnu::always_inline]] inline void add_lanes(float* dst, const Vec& acc, int skip) {
  if (skip == 0) {
    vec_at(dst) += acc;
    return;
  }
  for (int j = skip; j < kLanes; ++j) dst[j] += acc[j];
}

// The last strip of [first, last) (at least kLanes long) after full strips up to x: its start
// and how many of its lanes the full strips already did.
struct TailStrip {
  int64_t x;
  int skip;
};
TailStrip tail_strip(int64_t x, int64_t last) {
  return {last - kLanes, static_cast<int>(x - (last - kLanes))};
}

// Takes the unaligned view, so that a sum read straight from memory makes no aligned load.
float lane_sum(const VecView& v) {
  float sum = 0;
  for (int i = 0; i < kLanes; ++i) sum += v[i];
  return sum;
}

// Covers the columns [0, size) of a row whose wider strips have done [inside.first, x):
// strip(x, skip) for the rest of the columns whose taps are all inside, kLanes at a time and
// the last one overlapping (see add_lanes), then border(x) for each of the others. The strip
// lambdas are always_inline: a call left out of line would compile for the baseline ISA, not
// the enclosing clone's.
template <class Strip, class Border>
[[gnu::always_inline]] inline void finish_columns(TapRange inside, int64_t x, int64_t size,
                                                  const Strip& strip, const Border& border) {
  for (; x + kLanes <= inside.last; x += kLanes) strip(x, 0);
  if (x < inside.last && inside.size() >= kLanes) {
    const TailStrip tail = tail_strip(x, inside.last);
    strip(tail.x, tail.skip);
    x = inside.last;
  }
  for (int64_t b = 0; b < inside.first; ++b) border(b);
  for (; x < size; ++x) border(x);
}

// diff_dst's strip at dd with its first skip lanes zeroed in `masked`: the products of an
// overlapping strip's first lanes are already counted.
const float* skip_lanes(const float* dd, int skip, float (&masked)[kLanes]) {
  if (skip == 0) return dd;
  std::fill(masked, masked + skip, 0.0f);
  std::copy(dd + skip, dd + kLanes, masked + skip);
  return masked;
}

// Lane j of the result: the lanes of a and b in 2h-lane group j / (2h), folded in half and
// side by side (a's h sums, then b's).
constexpr int fold_index(int j, int h) {
  const int group = j / (2 * h) * (2 * h), pos = j % (2 * h);
  return pos < h ? group + pos : kLanes + group + pos - h;
}
template <int H, size_t... J>
[[gnu::always_inline]] inline void fold(Vec& a, const Vec& b, std::index_sequence<J...>) {
  a = __builtin_shufflevector(a, b, fold_index(J, H)...) +
      __builtin_shufflevector(a, b, (fold_index(J, H) + H)...);
}

// v[0][p] = the sum of v[p]'s lanes (v is clobbered): four rounds of folding pairs together,
// 45 vector operations for kLanes sums, where lane_sum takes 15 scalar additions for each.
[[gnu::always_inline]] inline void lane_sums(Vec (&v)[kLanes]) {
  constexpr auto lanes = std::make_index_sequence<kLanes>();
  for (int i = 0; i < 8; ++i) fold<8>(v[i], v[i + 8], lanes);
  for (int i = 0; i < 4; ++i) fold<4>(v[i], v[i + 4], lanes);
  for (int i = 0; i < 2; ++i) fold<2>(v[i], v[i + 2], lanes);
  fold<1>(v[0], v[1], lanes);
}

// ---- forward ----

// One output pixel of row oy over channels [channels.first, channels.last) with every tap
// bounds-checked: for the few border columns.
float checked_pixel(const ConvGeometry& g, const float* image, const float* weight,
                    TapRange channels, int64_t oy, int64_t x) {
  const int64_t k = g.kernel, iy0 = oy * g.stride - g.pad_top, ix0 = x * g.stride - g.pad_left;
  const TapRange rows = rows_inside(iy0, g.h, k), cols = rows_inside(ix0, g.w, k);
  float sum = 0;
  for (int64_t c = channels.first; c < channels.last; ++c)
    for (int64_t ky = rows.first; ky < rows.last; ++ky)
      for (int64_t kx = cols.first; kx < cols.last; ++kx)
        sum += weight[(c * k + ky) * k + kx] * image[(c * g.h + iy0 + ky) * g.w + ix0 + kx];
  return sum;
}

// dst[0, R * kLanes) += every tap of the given channels over the input columns from ix0 on
// (stride 1), but for the first skip lanes (see add_lanes).
template <int R>
[[gnu::always_inline]] inline void forward_strip(const ConvGeometry& g, const float* image,
                                                 const float* weight, TapRange channels,
                                                 TapRange rows, int64_t iy0, int64_t ix0,
                                                 float* dst, int skip = 0) {
  const int64_t k = g.kernel;
  Vec acc[R] = {};
  for (int64_t c = channels.first; c < channels.last; ++c)
    for (int64_t ky = rows.first; ky < rows.last; ++ky) {
      const float* row = image + (c * g.h + iy0 + ky) * g.w + ix0;
      const float* w = weight + (c * k + ky) * k;
      for (int64_t kx = 0; kx < k; ++kx)
        for (int r = 0; r < R; ++r) acc[r] += w[kx] * vec_at(row + kx + r * kLanes);
    }
  for (int r = 0; r < R; ++r) add_lanes(dst + r * kLanes, acc[r], r == 0 ? skip : 0);
}

// Output row `row` of the flattened n * ho += the taps of the given channels.
[[gnu::always_inline]] inline void forward_row(const ConvGeometry& g, const TapPlan& taps,
                                               TapRange inside, const float* src,
                                               const float* weight, TapRange channels, int64_t row,
                                               float* dst) {
  const int64_t k = g.kernel, s = g.stride;
  const int64_t n = row / g.ho, oy = row % g.ho, iy0 = oy * s - g.pad_top;
  const float* image = src + n * g.cin * g.h * g.w;
  const TapRange rows = rows_inside(iy0, g.h, k);
  float* out = dst + row * g.wo;
  if (s != 1) {
    // Strided rows do not vectorise this way; each tap runs over its own in-bounds columns.
    for (int64_t c = channels.first; c < channels.last; ++c)
      for (int64_t ky = rows.first; ky < rows.last; ++ky) {
        const float* in = image + (c * g.h + iy0 + ky) * g.w;
        for (int64_t kx = 0; kx < k; ++kx) {
          const float w = weight[(c * k + ky) * k + kx];
          const TapRange cols = taps.cols[kx];
          for (int64_t x = cols.first; x < cols.last; ++x)
            out[x] += w * in[x * s - g.pad_left + kx];
        }
      }
    return;
  }
  int64_t x = inside.first;
  for (; x + kStrip * kLanes <= inside.last; x += kStrip * kLanes)
    forward_strip<kStrip>(g, image, weight, channels, rows, iy0, x - g.pad_left, out + x);
  finish_columns(
      inside, x, g.wo,
      [&](int64_t col, int skip) __attribute__((always_inline)) {
        forward_strip<1>(g, image, weight, channels, rows, iy0, col - g.pad_left, out + col, skip);
      },
      [&](int64_t col) { out[col] += checked_pixel(g, image, weight, channels, oy, col); });
}

// Output rows [begin, end) of the flattened n * ho, bias included. Bands of kBandRows rows take
// kBandChannels channels at a time: a few input planes streamed in order keep the hardware
// prefetchers up, where all 32 planes per output row stalled on memory (20% slower than the
// reference kernel, measured).
EMT_SIMD_CLONES void forward_rows(const ConvGeometry& g, const TapPlan& taps, const float* src,
                                  const float* weight, float bias, float* dst, int64_t begin,
                                  int64_t end) {
  const TapRange inside = all_taps_inside(g.w, g.wo, g.stride, g.pad_left, g.kernel);
  for (int64_t band = begin; band < end; band += kBandRows) {
    const int64_t band_end = std::min(end, band + kBandRows);
    std::fill(dst + band * g.wo, dst + band_end * g.wo, bias);
    for (int64_t c0 = 0; c0 < g.cin; c0 += kBandChannels) {
      const TapRange channels{c0, std::min(g.cin, c0 + kBandChannels)};
      for (int64_t row = band; row < band_end; ++row)
        forward_row(g, taps, inside, src, weight, channels, row, dst);
    }
  }
}

// ---- weight and bias gradients ----

// lanes[(c * k + ky) * k + kx][:] += lane-wise diff_dst[0, R * kLanes) * the tap's input
// columns from ix0 on (stride 1).
template <int R>
[[gnu::always_inline]] inline void weight_grad_strip(const ConvGeometry& g, const float* image,
                                                     const float* dd, TapRange rows, int64_t iy0,
                                                     int64_t ix0, float* lanes) {
  const int64_t k = g.kernel;
  Vec d[R];
  for (int r = 0; r < R; ++r) d[r] = vec_at(dd + r * kLanes);
  for (int64_t c = 0; c < g.cin; ++c)
    for (int64_t ky = rows.first; ky < rows.last; ++ky) {
      const float* row = image + (c * g.h + iy0 + ky) * g.w + ix0;
      float* l = lanes + (c * k + ky) * k * kLanes;
      for (int64_t kx = 0; kx < k; ++kx) {
        Vec sum = d[0] * vec_at(row + kx);
        for (int r = 1; r < R; ++r) sum += d[r] * vec_at(row + kx + r * kLanes);
        vec_at(l + kx * kLanes) += sum;
      }
    }
}

// The weight gradient of output rows [begin, end): scalar terms into part [cin * k * k],
// vector terms lane-wise into lanes [cin * k * k * kLanes] (both summed into, not cleared).
EMT_SIMD_CLONES void weight_grad_rows(const ConvGeometry& g, const TapPlan& taps, const float* src,
                                      const float* diff_dst, int64_t begin, int64_t end,
                                      float* part, float* lanes) {
  const int64_t k = g.kernel, s = g.stride;
  const TapRange inside = all_taps_inside(g.w, g.wo, s, g.pad_left, k);
  // Border columns: one bounds-checked term per tap.
  const auto add_checked = [&](const float* image, const float* dd, int64_t iy0, int64_t x) {
    const int64_t ix0 = x * s - g.pad_left;
    const TapRange rows = rows_inside(iy0, g.h, k), cols = rows_inside(ix0, g.w, k);
    for (int64_t c = 0; c < g.cin; ++c)
      for (int64_t ky = rows.first; ky < rows.last; ++ky)
        for (int64_t kx = cols.first; kx < cols.last; ++kx)
          part[(c * k + ky) * k + kx] += dd[x] * image[(c * g.h + iy0 + ky) * g.w + ix0 + kx];
  };
  for (int64_t row = begin; row < end; ++row) {
    const int64_t n = row / g.ho, oy = row % g.ho, iy0 = oy * s - g.pad_top;
    const float* image = src + n * g.cin * g.h * g.w;
    const float* dd = diff_dst + row * g.wo;
    const TapRange rows = rows_inside(iy0, g.h, k);
    if (s != 1) {
      for (int64_t c = 0; c < g.cin; ++c)
        for (int64_t ky = rows.first; ky < rows.last; ++ky) {
          const float* in = image + (c * g.h + iy0 + ky) * g.w;
          for (int64_t kx = 0; kx < k; ++kx) {
            const TapRange cols = taps.cols[kx];
            float sum = 0;
            for (int64_t x = cols.first; x < cols.last; ++x)
              sum += dd[x] * in[x * s - g.pad_left + kx];
            part[(c * k + ky) * k + kx] += sum;
          }
        }
      continue;
    }
    int64_t x = inside.first;
    for (; x + kStrip * kLanes <= inside.last; x += kStrip * kLanes)
      weight_grad_strip<kStrip>(g, image, dd + x, rows, iy0, x - g.pad_left, lanes);
    finish_columns(
        inside, x, g.wo,
        [&](int64_t col, int skip) __attribute__((always_inline)) {
          float masked[kLanes];
          weight_grad_strip<1>(g, image, skip_lanes(dd + col, skip, masked), rows, iy0,
                               col - g.pad_left, lanes);
        },
        [&](int64_t col) { add_checked(image, dd, iy0, col); });
  }
}

// The sum of rows [begin, end) of diff_dst.
EMT_SIMD_CLONES float bias_grad_rows(const ConvGeometry& g, const float* diff_dst, int64_t begin,
                                     int64_t end) {
  const float* dd = diff_dst + begin * g.wo;
  const int64_t len = (end - begin) * g.wo;
  Vec acc = {};
  int64_t i = 0;
  for (; i + kLanes <= len; i += kLanes) acc += vec_at(dd + i);
  float sum = lane_sum(acc);
  for (; i < len; ++i) sum += dd[i];
  return sum;
}

// ---- input gradient ----

// Stride 1: the columns ix whose taps ox = ix + pad_left - kx, kx in [0, k), all lie in
// [0, wo).
TapRange src_grad_inside(const ConvGeometry& g) {
  const int64_t first = std::clamp<int64_t>(g.kernel - 1 - g.pad_left, 0, g.w);
  return {first, std::max(first, std::min(g.w, g.wo - g.pad_left))};
}

// Stride 1: the filter rows ky whose output row iy + pad_top - ky lies in [0, ho).
TapRange src_grad_filter_rows(const ConvGeometry& g, int64_t iy) {
  const int64_t oy_top = iy + g.pad_top;
  return {std::max<int64_t>(0, oy_top - g.ho + 1),
          std::max<int64_t>(0, std::min(g.kernel, oy_top + 1))};
}

// diff_src[c, iy, ix] (image's planes) += sum over in-bounds taps of w[c, ky, kx] *
// diff_dst[oy, ox] with oy = iy + pad_top - ky, ox = ix + pad_left - kx (stride 1), checked.
float checked_src_pixel(const ConvGeometry& g, const float* dd_image, const float* weight,
                        int64_t c, int64_t iy, int64_t ix) {
  const int64_t k = g.kernel;
  float sum = 0;
  for (int64_t ky = 0; ky < k; ++ky) {
    const int64_t oy = iy + g.pad_top - ky;
    if (oy < 0 || oy >= g.ho) continue;
    for (int64_t kx = 0; kx < k; ++kx) {
      const int64_t ox = ix + g.pad_left - kx;
      if (ox < 0 || ox >= g.wo) continue;
      sum += weight[(c * k + ky) * k + kx] * dd_image[oy * g.wo + ox];
    }
  }
  return sum;
}

// Channels [c0, c0 + Q) of diff_src row iy, columns [ix, ix + R * kLanes), all of whose taps
// are in bounds, but for the first skip lanes: a full correlation of diff_dst with each
// channel's flipped filter (stride 1).
template <int R, int Q>
[[gnu::always_inline]] inline void src_grad_strip(const ConvGeometry& g, const float* dd_image,
                                                  const float* weight, int64_t c0, TapRange rows,
                                                  int64_t iy, int64_t ix, float* ds_image,
                                                  int skip = 0) {
  const int64_t k = g.kernel, plane = g.h * g.w;
  Vec acc[Q][R] = {};
  for (int64_t ky = rows.first; ky < rows.last; ++ky) {
    const float* dd_row = dd_image + (iy + g.pad_top - ky) * g.wo + ix + g.pad_left;
    for (int64_t kx = 0; kx < k; ++kx) {
      Vec d[R];
      for (int r = 0; r < R; ++r) d[r] = vec_at(dd_row - kx + r * kLanes);
      for (int q = 0; q < Q; ++q) {
        const float w = weight[((c0 + q) * k + ky) * k + kx];
        for (int r = 0; r < R; ++r) acc[q][r] += w * d[r];
      }
    }
  }
  for (int q = 0; q < Q; ++q)
    for (int r = 0; r < R; ++r)
      add_lanes(ds_image + (c0 + q) * plane + iy * g.w + ix + r * kLanes, acc[q][r],
                r == 0 ? skip : 0);
}

// Channels [c0, c0 + Q) of diff_src row iy, every column.
template <int Q>
[[gnu::always_inline]] inline void src_grad_channels(const ConvGeometry& g, const float* dd_image,
                                                     const float* weight, int64_t c0, TapRange rows,
                                                     TapRange inside, int64_t iy, float* ds_image) {
  int64_t x = inside.first;
  for (; x + kSrcGradStrip * kLanes <= inside.last; x += kSrcGradStrip * kLanes)
    src_grad_strip<kSrcGradStrip, Q>(g, dd_image, weight, c0, rows, iy, x, ds_image);
  float* out = ds_image + iy * g.w;
  finish_columns(
      inside, x, g.w,
      [&](int64_t col, int skip) __attribute__((always_inline)) {
        src_grad_strip<1, Q>(g, dd_image, weight, c0, rows, iy, col, ds_image, skip);
      },
      [&](int64_t col) {
        for (int q = 0; q < Q; ++q)
          out[(c0 + q) * g.h * g.w + col] +=
              checked_src_pixel(g, dd_image, weight, c0 + q, iy, col);
      });
}

// Input rows [begin, end) of the flattened n * h, stride 1.
EMT_SIMD_CLONES void src_grad_rows(const ConvGeometry& g, const float* diff_dst,
                                   const float* weight, float* diff_src, int64_t begin,
                                   int64_t end) {
  const TapRange inside = src_grad_inside(g);
  for (int64_t row = begin; row < end; ++row) {
    const int64_t n = row / g.h, iy = row % g.h;
    const float* dd_image = diff_dst + n * g.ho * g.wo;
    float* ds_image = diff_src + n * g.cin * g.h * g.w;
    const TapRange rows = src_grad_filter_rows(g, iy);
    int64_t c = 0;
    for (; c + kSrcGradChannels <= g.cin; c += kSrcGradChannels)
      src_grad_channels<kSrcGradChannels>(g, dd_image, weight, c, rows, inside, iy, ds_image);
    for (; c < g.cin; ++c) src_grad_channels<1>(g, dd_image, weight, c, rows, inside, iy, ds_image);
  }
}

// Input rows [begin, end) of the flattened n * h for stride > 1: each output row that reads
// input row iy is spread back through the taps that read it. Only this task writes row iy.
void strided_src_grad_rows(const ConvGeometry& g, const TapPlan& taps, const float* diff_dst,
                           const float* weight, float* diff_src, int64_t begin, int64_t end) {
  const int64_t k = g.kernel, s = g.stride;
  for (int64_t row = begin; row < end; ++row) {
    const int64_t n = row / g.h, iy = row % g.h;
    for (int64_t ky = 0; ky < k; ++ky) {
      const int64_t t = iy + g.pad_top - ky;  // oy * s
      if (t < 0 || t % s != 0 || t / s >= g.ho) continue;
      const float* dd = diff_dst + (n * g.ho + t / s) * g.wo;
      for (int64_t c = 0; c < g.cin; ++c) {
        float* out = diff_src + ((n * g.cin + c) * g.h + iy) * g.w;
        for (int64_t kx = 0; kx < k; ++kx) {
          const float w = weight[(c * k + ky) * k + kx];
          const TapRange cols = taps.cols[kx];
          for (int64_t x = cols.first; x < cols.last; ++x)
            out[x * s - g.pad_left + kx] += w * dd[x];
        }
      }
    }
  }
}

// ---- channel-blocked src ----
// In nChw16c a pixel's kLayoutBlock channels are contiguous, so these kernels vectorise across
// channels rather than columns: a Vec holds one pixel's channel block, and every stride takes
// the vector path. They take the weight blocked the same way (see block_weight).
static_assert(kLanes == kLayoutBlock, "a channel block is one Vec");

// The weight as [cin / kLanes, kernel, kernel, kLanes]: a tap's channel block is one Vec.
std::vector<float> block_weight(const ConvGeometry& g, const float* weight) {
  const int64_t taps = g.kernel * g.kernel;
  std::vector<float> blocked(g.cin * taps);
  for (int64_t c = 0; c < g.cin; ++c)
    for (int64_t t = 0; t < taps; ++t)
      blocked[((c / kLanes) * taps + t) * kLanes + c % kLanes] = weight[c * taps + t];
  return blocked;
}

// The offset of pixel (iy, ix) of channel block cb in a blocked image.
inline int64_t pixel_block(const ConvGeometry& g, int64_t cb, int64_t iy, int64_t ix) {
  return ((cb * g.h + iy) * g.w + ix) * kLanes;
}
// The offset of channel block cb of filter tap (ky, kx) in block_weight's layout.
inline int64_t tap_block(const ConvGeometry& g, int64_t cb, int64_t ky, int64_t kx) {
  return ((cb * g.kernel + ky) * g.kernel + kx) * kLanes;
}

// dst[skip, kLanes) += output pixels [skip, kLanes) of a strip whose first input column is ix0,
// all of whose taps are inside: a lane-wise sum per pixel over taps and channel blocks, then
// one lane_sums for the strip.
[[gnu::always_inline]] inline void blocked_forward_strip(const ConvGeometry& g, const float* image,
                                                         const float* blocked_weight, TapRange rows,
                                                         int64_t iy0, int64_t ix0, float* dst,
                                                         int skip) {
  const int64_t step = g.stride * kLanes;
  Vec acc[kLanes] = {};
  for (int64_t cb = 0; cb < g.cin / kLanes; ++cb)
    for (int64_t ky = rows.first; ky < rows.last; ++ky) {
      const float* in = image + pixel_block(g, cb, iy0 + ky, ix0);
      for (int64_t kx = 0; kx < g.kernel; ++kx) {
        const Vec w = vec_at(blocked_weight + tap_block(g, cb, ky, kx));
        for (int p = 0; p < kLanes; ++p) acc[p] += w * vec_at(in + kx * kLanes + p * step);
      }
    }
  lane_sums(acc);
  add_lanes(dst, acc[0], skip);
}

// acc += the lane-wise terms of output pixel (oy, x) with every tap bounds-checked.
void blocked_checked_pixel(const ConvGeometry& g, const float* image, const float* blocked_weight,
                           int64_t oy, int64_t x, Vec& acc) {
  const int64_t iy0 = oy * g.stride - g.pad_top, ix0 = x * g.stride - g.pad_left;
  const TapRange rows = rows_inside(iy0, g.h, g.kernel), cols = rows_inside(ix0, g.w, g.kernel);
  for (int64_t cb = 0; cb < g.cin / kLanes; ++cb)
    for (int64_t ky = rows.first; ky < rows.last; ++ky)
      for (int64_t kx = cols.first; kx < cols.last; ++kx)
        acc += vec_at(blocked_weight + tap_block(g, cb, ky, kx)) *
               vec_at(image + pixel_block(g, cb, iy0 + ky, ix0 + kx));
}

// Output rows [begin, end) of the flattened n * ho, bias included.
EMT_SIMD_CLONES void blocked_forward_rows(const ConvGeometry& g, const float* src,
                                          const float* blocked_weight, float bias, float* dst,
                                          int64_t begin, int64_t end) {
  const TapRange inside = all_taps_inside(g.w, g.wo, g.stride, g.pad_left, g.kernel);
  for (int64_t row = begin; row < end; ++row) {
    const int64_t n = row / g.ho, oy = row % g.ho, iy0 = oy * g.stride - g.pad_top;
    const float* image = src + n * g.cin * g.h * g.w;
    const TapRange rows = rows_inside(iy0, g.h, g.kernel);
    float* out = dst + row * g.wo;
    std::fill(out, out + g.wo, bias);
    finish_columns(
        inside, inside.first, g.wo,
        [&](int64_t col, int skip) __attribute__((always_inline)) {
          blocked_forward_strip(g, image, blocked_weight, rows, iy0, col * g.stride - g.pad_left,
                                out + col, skip);
        },
        [&](int64_t col) {
          Vec acc = {};
          blocked_checked_pixel(g, image, blocked_weight, oy, col, acc);
          out[col] += lane_sum(acc);
        });
  }
}

// Independent sums per weight-gradient tap, so that a strip's kLanes multiply-adds into it do
// not wait on each other's latency.
constexpr int kChains = 4;

// lanes (block_weight's layout) += dd[p] * each tap's input block, summed over the strip's
// pixels p whose first input column is ix0 and all of whose taps are inside.
[[gnu::always_inline]] inline void blocked_weight_grad_strip(const ConvGeometry& g,
                                                             const float* image, const float* dd,
                                                             TapRange rows, int64_t iy0,
                                                             int64_t ix0, float* lanes) {
  const int64_t step = g.stride * kLanes;
  for (int64_t cb = 0; cb < g.cin / kLanes; ++cb)
    for (int64_t ky = rows.first; ky < rows.last; ++ky) {
      const float* in = image + pixel_block(g, cb, iy0 + ky, ix0);
      for (int64_t kx = 0; kx < g.kernel; ++kx) {
        Vec sum[kChains] = {};
        for (int p = 0; p < kLanes; ++p)
          sum[p % kChains] += dd[p] * vec_at(in + kx * kLanes + p * step);
        vec_at(lanes + tap_block(g, cb, ky, kx)) += (sum[0] + sum[1]) + (sum[2] + sum[3]);
      }
    }
}

// The weight gradient of output rows [begin, end), lane-wise into lanes (block_weight's layout,
// summed into, not cleared).
EMT_SIMD_CLONES void blocked_weight_grad_rows(const ConvGeometry& g, const float* src,
                                              const float* diff_dst, int64_t begin, int64_t end,
                                              float* lanes) {
  const TapRange inside = all_taps_inside(g.w, g.wo, g.stride, g.pad_left, g.kernel);
  for (int64_t row = begin; row < end; ++row) {
    const int64_t n = row / g.ho, oy = row % g.ho, iy0 = oy * g.stride - g.pad_top;
    const float* image = src + n * g.cin * g.h * g.w;
    const float* dd = diff_dst + row * g.wo;
    const TapRange rows = rows_inside(iy0, g.h, g.kernel);
    finish_columns(
        inside, inside.first, g.wo,
        [&](int64_t col, int skip) __attribute__((always_inline)) {
          float masked[kLanes];
          blocked_weight_grad_strip(g, image, skip_lanes(dd + col, skip, masked), rows, iy0,
                                    col * g.stride - g.pad_left, lanes);
        },
        [&](int64_t col) {
          const int64_t ix0 = col * g.stride - g.pad_left;
          const TapRange cols = rows_inside(ix0, g.w, g.kernel);
          for (int64_t cb = 0; cb < g.cin / kLanes; ++cb)
            for (int64_t ky = rows.first; ky < rows.last; ++ky)
              for (int64_t kx = cols.first; kx < cols.last; ++kx)
                vec_at(lanes + tap_block(g, cb, ky, kx)) +=
                    dd[col] * vec_at(image + pixel_block(g, cb, iy0 + ky, ix0 + kx));
        });
  }
}

// Stride 1: diff_src blocks [skip, kLanes) of a strip of input row iy from column ix, all of
// whose taps are inside, += the full correlation of diff_dst with the flipped filter: a
// broadcast diff_dst value times a weight block per tap.
[[gnu::always_inline]] inline void blocked_src_grad_strip(const ConvGeometry& g,
                                                          const float* dd_image,
                                                          const float* blocked_weight,
                                                          TapRange rows, int64_t iy, int64_t ix,
                                                          float* ds_image, int skip) {
  for (int64_t cb = 0; cb < g.cin / kLanes; ++cb) {
    Vec acc[kLanes] = {};
    for (int64_t ky = rows.first; ky < rows.last; ++ky) {
      const float* dd_row = dd_image + (iy + g.pad_top - ky) * g.wo + ix + g.pad_left;
      for (int64_t kx = 0; kx < g.kernel; ++kx) {
        const Vec w = vec_at(blocked_weight + tap_block(g, cb, ky, kx));
        for (int p = 0; p < kLanes; ++p) acc[p] += dd_row[p - kx] * w;
      }
    }
    float* out = ds_image + pixel_block(g, cb, iy, ix);
    for (int p = skip; p < kLanes; ++p) vec_at(out + p * kLanes) += acc[p];
  }
}

// acc += the terms of diff_src pixel (iy, ix) of channel block cb, any stride, every tap
// checked. Only the taps kx = (ix + pad_left) mod stride + j * stride land on a whole output
// column ox; they run down from ox's largest value.
void blocked_checked_src_pixel(const ConvGeometry& g, const float* dd_image,
                               const float* blocked_weight, int64_t cb, int64_t iy, int64_t ix,
                               Vec& acc) {
  const int64_t s = g.stride, ty = iy + g.pad_top, tx = ix + g.pad_left;
  for (int64_t ky = ty % s; ky < g.kernel && ky <= ty; ky += s) {
    const int64_t oy = (ty - ky) / s;
    if (oy >= g.ho) continue;
    for (int64_t kx = tx % s; kx < g.kernel && kx <= tx; kx += s) {
      const int64_t ox = (tx - kx) / s;
      if (ox >= g.wo) continue;
      acc += dd_image[oy * g.wo + ox] * vec_at(blocked_weight + tap_block(g, cb, ky, kx));
    }
  }
}

// Input rows [begin, end) of the flattened n * h; the strips need stride 1.
EMT_SIMD_CLONES void blocked_src_grad_rows(const ConvGeometry& g, const float* diff_dst,
                                           const float* blocked_weight, float* diff_src,
                                           int64_t begin, int64_t end) {
  const TapRange inside = g.stride == 1 ? src_grad_inside(g) : TapRange{0, 0};
  for (int64_t row = begin; row < end; ++row) {
    const int64_t n = row / g.h, iy = row % g.h;
    const float* dd_image = diff_dst + n * g.ho * g.wo;
    float* ds_image = diff_src + n * g.cin * g.h * g.w;
    const TapRange rows = src_grad_filter_rows(g, iy);
    finish_columns(
        inside, inside.first, g.w,
        [&](int64_t col, int skip) __attribute__((always_inline)) {
          blocked_src_grad_strip(g, dd_image, blocked_weight, rows, iy, col, ds_image, skip);
        },
        [&](int64_t col) {
          for (int64_t cb = 0; cb < g.cin / kLanes; ++cb) {
            Vec acc = {};
            blocked_checked_src_pixel(g, dd_image, blocked_weight, cb, iy, col, acc);
            vec_at(ds_image + pixel_block(g, cb, iy, col)) += acc;
          }
        });
  }
}

// part [cin * k * k] += lanes: per tap when plain (weight_grad_rows), per channel of each tap's
// block when blocked (blocked_weight_grad_rows).
void add_weight_lanes(const ConvGeometry& g, Layout src_layout, const float* lanes, float* part) {
  const int64_t taps = g.kernel * g.kernel;
  if (src_layout == Layout::kPlain) {
    for (int64_t t = 0; t < g.cin * taps; ++t) part[t] += lane_sum(vec_at(lanes + t * kLanes));
    return;
  }
  for (int64_t c = 0; c < g.cin; ++c)
    for (int64_t t = 0; t < taps; ++t)
      part[c * taps + t] += lanes[((c / kLanes) * taps + t) * kLanes + c % kLanes];
}

// diff_weight and diff_bias (either may be null): partial sums per block of kRowsPerPartial
// output rows, then the blocks added in order.
void weight_and_bias_grad(const ConvGeometry& g, const TapPlan& taps, const float* src,
                          Layout src_layout, const float* diff_dst, float* diff_weight,
                          float* diff_bias) {
  const int64_t taps_count = g.cin * g.kernel * g.kernel, rows = g.n * g.ho;
  const int64_t blocks = (rows + kRowsPerPartial - 1) / kRowsPerPartial;
  const bool blocked = src_layout == Layout::kChannelBlocked;
  std::vector<float> weight_parts(diff_weight ? blocks * taps_count : 0);
  std::vector<float> bias_parts(diff_bias ? blocks : 0);
  parallel_for(blocks, [&](int64_t begin, int64_t end) {
    // Plain src sums kLanes columns per tap, blocked src one lane per channel.
    std::vector<float> lanes(diff_weight ? taps_count * (blocked ? 1 : kLanes) : 0);
    for (int64_t block = begin; block < end; ++block) {
      const int64_t first = block * kRowsPerPartial, last = std::min(rows, first + kRowsPerPartial);
      if (diff_bias) bias_parts[block] = bias_grad_rows(g, diff_dst, first, last);
      if (!diff_weight) continue;
      std::fill(lanes.begin(), lanes.end(), 0.0f);
      float* part = weight_parts.data() + block * taps_count;
      if (blocked)
        blocked_weight_grad_rows(g, src, diff_dst, first, last, lanes.data());
      else
        weight_grad_rows(g, taps, src, diff_dst, first, last, part, lanes.data());
      add_weight_lanes(g, src_layout, lanes.data(), part);
    }
  });
  for (int64_t block = 0; block < blocks; ++block) {
    if (diff_bias) *diff_bias += bias_parts[block];
    if (diff_weight)
      for (int64_t t = 0; t < taps_count; ++t)
        diff_weight[t] += weight_parts[block * taps_count + t];
  }
}

}  // namespace

bool one_output_conv_fits(const ConvGeometry& g, Layout src_layout) {
  if (g.cout != 1 || g.groups != 1 || g.kernel < 1 || g.stride < 1) return false;
  if (g.pad_top < 0 || g.pad_left < 0 || g.pad_bottom < 0 || g.pad_right < 0) return false;
  if (src_layout == Layout::kChannelBlocked && (g.cin < 1 || g.cin % kLayoutBlock != 0))
    return false;
  const int64_t padded_h = g.h + g.pad_top + g.pad_bottom,
                padded_w = g.w + g.pad_left + g.pad_right;
  return padded_h >= g.kernel && padded_w >= g.kernel &&
         g.ho == (padded_h - g.kernel) / g.stride + 1 &&
         g.wo == (padded_w - g.kernel) / g.stride + 1;
}

void one_output_conv_forward(const ConvGeometry& g, const float* src, const float* weight,
                             const float* bias, float* dst, Layout src_layout) {
  const float b = bias ? *bias : 0.0f;
  if (src_layout == Layout::kChannelBlocked) {
    const std::vector<float> blocked_weight = block_weight(g, weight);
    parallel_for(g.n * g.ho, [&](int64_t begin, int64_t end) {
      blocked_forward_rows(g, src, blocked_weight.data(), b, dst, begin, end);
    });
    return;
  }
  const TapPlan taps(g);
  parallel_for(g.n * g.ho, [&](int64_t begin, int64_t end) {
    forward_rows(g, taps, src, weight, b, dst, begin, end);
  });
}

void one_output_conv_backward(const ConvGeometry& g, const float* src, const float* weight,
                              const float* diff_dst, float* diff_src, float* diff_weight,
                              float* diff_bias, Layout src_layout) {
  const TapPlan taps(g);
  if (diff_src && src_layout == Layout::kChannelBlocked) {
    const std::vector<float> blocked_weight = block_weight(g, weight);
    parallel_for(g.n * g.h, [&](int64_t begin, int64_t end) {
      blocked_src_grad_rows(g, diff_dst, blocked_weight.data(), diff_src, begin, end);
    });
  } else if (diff_src) {
    parallel_for(g.n * g.h, [&](int64_t begin, int64_t end) {
      if (g.stride == 1)
        src_grad_rows(g, diff_dst, weight, diff_src, begin, end);
      else
        strided_src_grad_rows(g, taps, diff_dst, weight, diff_src, begin, end);
    });
  }
  if (diff_weight || diff_bias)
    weight_and_bias_grad(g, taps, src, src_layout, diff_dst, diff_weight, diff_bias);
}

}  // namespace emt
