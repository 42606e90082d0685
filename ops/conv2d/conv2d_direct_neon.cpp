// The direct convolution. Each destination row splits, per phase, into interior lanes, whose
// taps all lie inside the source and match from lane to lane, computed as register tiles of R
// channels by V vectors of four lanes; and border lanes, computed one at a time over their
// clipped taps. The tiles read the filters from a copy packed on the stack with the R channels'
// weights of each tap side by side, so that one vector load serves four channels; source
// channels beyond what the copy holds are summed in further passes, through the destination.
// Depthwise 3x3 convolutions (MobileNet's) keep their filter in registers instead.
#include <algorithm>

#include "ops/conv2d/conv2d_neon_kernels.h"

namespace emt::conv_neon {

AxisTaps ConvAxis::taps(int64_t dst) const {
  if (!transposed) {
    const int64_t first_src = dst * stride - pad;
    const int64_t first = std::max<int64_t>(0, -first_src);
    const int64_t last = std::min(kernel, src_size - first_src);
    return {std::max<int64_t>(0, last - first), first_src + first, 1, first, 1};
  }
  // Taps t = t0 + m * stride read source top - m.
  const int64_t t0 = (dst + pad) % stride, top = (dst + pad) / stride;
  if (t0 >= kernel) return {};
  const int64_t first_m = std::max<int64_t>(0, top - (src_size - 1));
  const int64_t last_m = std::min((kernel - 1 - t0) / stride, top);
  return {std::max<int64_t>(0, last_m - first_m + 1), top - first_m, -1, t0 + first_m * stride,
          stride};
}

int64_t ConvAxis::full_taps(int64_t phase) const {
  if (!transposed) return kernel;
  const int64_t t0 = (phase + pad) % stride;
  return t0 < kernel ? (kernel - 1 - t0) / stride + 1 : 0;
}

namespace {

// Packed filters on the stack (8 KiB): 28 source channels of 3x3 filters for a tile of 8
// destination channels per pass.
constexpr int64_t kPackFloats = 2048;

// Zero-padded source planes on the stack (16 KiB) for depthwise3x3: up to 62x62.
constexpr int64_t kPaddedPlaneFloats = 4096;

// Lanes [first, last) of a phase of destination columns; empty or at least 4 long.
struct LaneRange {
  int64_t first = 0, last = 0;
};

// Four source floats `Step` apart from p, through loads that read up to p[4 * Step - 1]: one
// float past the last used one at Step 2, which interior_lanes keeps inside the source row.
template <int Step>
float32x4_t load_lanes(const float* p) {
  if constexpr (Step == 1) {
    return vld1q_f32(p);
  } else {
    static_assert(Step == 2);
    return vld2q_f32(p).val[0];
  }
}

// x[kw] = the sources of filter tap kw for four lanes at p, of a 3-wide filter row: at Step 2 the
// first two come from one deinterleaving load.
template <int Step>
void load_filter_row(const float* p, float32x4_t (&x)[3]) {
  if constexpr (Step == 1) {
    x[0] = vld1q_f32(p);
    x[1] = vld1q_f32(p + 1);
    x[2] = vld1q_f32(p + 2);
  } else {
    const float32x4x2_t pair = vld2q_f32(p);
    x[0] = pair.val[0];
    x[1] = pair.val[1];
    x[2] = load_lanes<2>(p + 2);
  }
}

// acc + x * tap kTap of a 3x3 filter held as taps 0-3, taps 4-7 and tap 8 in every lane.
template <int kTap>
float32x4_t multiply_add_tap(float32x4_t acc, float32x4_t x, const float32x4_t (&filter)[3]) {
  if constexpr (kTap < 8) {
    return vfmaq_laneq_f32(acc, x, filter[kTap / 4], kTap % 4);
  } else {
    return vfmaq_f32(acc, x, filter[2]);
  }
}

// Four destination floats `step` apart (the transposed conv's phases interleave in a row).
float32x4_t load_dst(const float* dst, int64_t step) {
  if (step == 1) return vld1q_f32(dst);
  float32x4_t x = vdupq_n_f32(0.0f);
  x = vld1q_lane_f32(dst, x, 0);
  x = vld1q_lane_f32(dst + step, x, 1);
  x = vld1q_lane_f32(dst + 2 * step, x, 2);
  return vld1q_lane_f32(dst + 3 * step, x, 3);
}

// Stores lanes first_lane to 3 of x, `step` floats apart.
void store_dst(float* dst, int64_t step, float32x4_t x, int first_lane) {
  if (step == 1 && first_lane == 0) {
    vst1q_f32(dst, x);
    return;
  }
  if (first_lane <= 0) vst1q_lane_f32(dst, x, 0);
  if (first_lane <= 1) vst1q_lane_f32(dst + step, x, 1);
  if (first_lane <= 2) vst1q_lane_f32(dst + 2 * step, x, 2);
  vst1q_lane_f32(dst + 3 * step, x, 3);
}

// The lanes of a phase whose taps are all in the source, read through load_lanes<Step>.
LaneRange interior_lanes(const ConvAxis& cols, int64_t phase, int64_t step) {
  const int64_t full = cols.full_taps(phase), lanes = cols.phase_size(phase);
  const auto inside = [&](int64_t lane) {
    const AxisTaps t = cols.taps(phase + lane * cols.phase_dst_step());
    if (t.count != full) return false;
    const int64_t far_src = std::max(t.src, t.src + (t.count - 1) * t.src_step);
    return t.count == 0 || far_src + step - 1 < cols.src_size;
  };
  LaneRange r{0, lanes};
  while (r.first < r.last && !inside(r.first)) ++r.first;
  while (r.last > r.first && !inside(r.last - 1)) --r.last;
  return r.last - r.first >= 4 ? r : LaneRange{};
}

// One batch item and group, and a tile of destination channels of it.
struct ChannelTile {
  const float* src;     // the group's first source channel
  const float* weight;  // the tile's first filter
  const float* bias;    // the tile's first bias, or null
  float* dst;           // the tile's first destination channel
};

// The source channels [first, first + count) of one pass, their filters for the tile's R
// channels packed at weights as [channel][tap][R]. The first pass starts the sums from the bias,
// the last activates them and computes the border lanes (over every channel at once).
struct Pass {
  const float* weights = nullptr;
  int64_t first = 0, count = 0;
  bool opens = true, closes = true;
};

class DirectRunner {
 public:
  DirectRunner(const Direct& d, ConvActivation act)
      : d_(d),
        act_(act),
        kernel_(d.rows.kernel),
        taps_(d.rows.kernel * d.rows.kernel),
        src_plane_(d.rows.src_size * d.cols.src_size),
        dst_plane_(d.rows.dst_size * d.cols.dst_size) {}

  // R destination channels at once; V vectors of lanes per interior tile.
  template <int R>
  void channels(const ChannelTile& c) const {
    constexpr int V = R == 1 ? 4 : 2;
    const int64_t per_pass = kPackFloats / (R * taps_);
    if (per_pass == 0) {  // filters too large to pack: every lane a border one
      phases<R, V, 0>(c, Pass{});
      return;
    }
    float packed[kPackFloats];
    for (int64_t first = 0; first < d_.src_channels; first += per_pass) {
      const Pass pass{packed, first, std::min(per_pass, d_.src_channels - first), first == 0,
                      first + per_pass >= d_.src_channels};
      pack<R>(c, pass, packed);
      switch (d_.cols.phase_src_step()) {
        case 1:
          phases<R, V, 1>(c, pass);
          break;
        case 2:
          phases<R, V, 2>(c, pass);
          break;
        default:  // no vector loads for wider steps: every lane a border one
          phases<R, V, 0>(c, pass);
      }
    }
  }

  // One channel's 3x3 depthwise filter (src_channels = dst_channels = 1, forward). A plane whose
  // zero-padded copy fits on the stack (MobileNet's 56x56 and below) is convolved from the copy,
  // every lane an interior one: at 7x7, border lanes would otherwise be 2 in 7.
  template <int Step>
  void depthwise3x3(const ChannelTile& c) const {
    const int64_t dst_w = d_.cols.dst_size;
    // What the windows read, and the float past the last one that load_lanes<2> touches.
    const int64_t rows = (d_.rows.dst_size - 1) * Step + 3, cols = (dst_w - 1) * Step + 2 + Step;
    if (dst_w >= 4 && rows * cols <= kPaddedPlaneFloats) {
      float padded[kPaddedPlaneFloats];
      conv_detail::pad_plane(c.src, d_.rows.src_size, d_.cols.src_size, 1, padded, rows, cols,
                             d_.rows.pad, d_.cols.pad);
      for (int64_t row = 0; row < d_.rows.dst_size; ++row)
        depthwise3x3_row<Step>(c, padded + row * Step * cols, cols, row, {0, dst_w},
                               [](int64_t) {});
      return;
    }
    const LaneRange interior = interior_lanes(d_.cols, 0, Step);
    for (int64_t row = 0; row < d_.rows.dst_size; ++row) {
      const AxisTaps rt = d_.rows.taps(row);
      if (rt.count < 3) {  // a padded row: the generic tile, whose pack is the filter itself
        row_lanes<1, 2, Step>(c, Pass{c.weight, 0, 1, true, true}, 0, interior, row);
        continue;
      }
      depthwise3x3_row<Step>(c, c.src + rt.src * d_.cols.src_size - d_.cols.pad, d_.cols.src_size,
                             row, interior, [&](int64_t lane) { point<1>(c, row, rt, lane); });
    }
  }

 private:
  // One destination row of depthwise3x3 from the three source rows src_w apart at src, lane 0's
  // window at src. The filter goes into three vectors in each tile: held across the row loop,
  // whose border lanes call out, it would live on the stack.
  template <int Step, class Border>
  void depthwise3x3_row(const ChannelTile& c, const float* src, int64_t src_w, int64_t row,
                        LaneRange interior, Border&& border) const {
    float* dst = c.dst + row * d_.cols.dst_size;
    const float bias = c.bias ? *c.bias : 0.0f;
    const auto tile = [&]<int V>(int64_t lane, int skip) {
      const float* s = src + lane * Step;
      const float32x4_t filter[3] = {vld1q_f32(c.weight), vld1q_f32(c.weight + 4),
                                     vld1q_dup_f32(c.weight + 8)};
      float32x4_t acc[V];
#pragma GCC unroll 16
      for (int v = 0; v < V; ++v) acc[v] = vdupq_n_f32(bias);
      neon::unroll<3>([&](auto kh) {
#pragma GCC unroll 16
        for (int v = 0; v < V; ++v) {
          float32x4_t x[3];
          load_filter_row<Step>(s + decltype(kh)::value * src_w + 4 * Step * v, x);
          neon::unroll<3>([&](auto kw) {
            constexpr int kTap = 3 * decltype(kh)::value + decltype(kw)::value;
            acc[v] = multiply_add_tap<kTap>(acc[v], x[kTap % 3], filter);
          });
        }
      });
#pragma GCC unroll 16
      for (int v = 0; v < V; ++v) store_dst(dst + lane + 4 * v, 1, activate(act_, acc[v]), skip);
    };
    lanes<2>(d_.cols.dst_size, interior, tile, border);
  }

  // packed = the filters of the pass's channels for the tile's R channels, as Pass describes.
  template <int R>
  void pack(const ChannelTile& c, const Pass& pass, float* packed) const {
    for (int64_t channel = pass.first; channel < pass.first + pass.count; ++channel)
      for (int64_t tap = 0; tap < taps_; ++tap)
        for (int r = 0; r < R; ++r)
          *packed++ = c.weight[r * d_.weight_dst + channel * d_.weight_src + tap];
  }

  // Interior lanes through tile.template operator()<W>(lane, skip) in tiles of W = V vectors,
  // then of one; a last tile of one vector moved back to end at the interior's end skips the
  // lanes the tiles before it computed. (Rewriting them would add a pass's sums twice.) The
  // other lanes go through border(lane).
  template <int V, class Tile, class Border>
  static void lanes(int64_t count, LaneRange interior, Tile&& tile, Border&& border) {
    for (int64_t lane = 0; lane < interior.first; ++lane) border(lane);
    int64_t lane = interior.first;
    for (; lane + 4 * V <= interior.last; lane += 4 * V) tile.template operator()<V>(lane, 0);
    for (; lane + 4 <= interior.last; lane += 4) tile.template operator()<1>(lane, 0);
    if (lane < interior.last)
      tile.template operator()<1>(interior.last - 4, static_cast<int>(lane - (interior.last - 4)));
    for (lane = std::max(interior.last, interior.first); lane < count; ++lane) border(lane);
  }

  template <int R, int V, int Step>
  void phases(const ChannelTile& c, const Pass& pass) const {
    for (int64_t phase = 0; phase < d_.cols.phases(); ++phase) {
      const LaneRange interior = Step == 0 ? LaneRange{} : interior_lanes(d_.cols, phase, Step);
      for (int64_t row = 0; row < d_.rows.dst_size; ++row)
        row_lanes<R, V, Step>(c, pass, phase, interior, row);
    }
  }

  template <int R, int V, int Step>
  void row_lanes(const ChannelTile& c, const Pass& pass, int64_t phase, LaneRange interior,
                 int64_t row) const {
    const AxisTaps rt = d_.rows.taps(row);
    const auto dst_col = [&](int64_t lane) { return phase + lane * d_.cols.phase_dst_step(); };
    const auto tile = [&]<int W>(int64_t lane, int skip) {
      if constexpr (Step > 0) this->tile<R, W, Step>(c, pass, row, rt, dst_col(lane), skip);
    };
    lanes<V>(d_.cols.phase_size(phase), interior, tile, [&](int64_t lane) {
      if (pass.closes) point<R>(c, row, rt, dst_col(lane));
    });
  }

  // R channels by V vectors of interior lanes, the first at destination column col; the first
  // `skip` lanes are left unwritten.
  template <int R, int V, int Step>
  void tile(const ChannelTile& c, const Pass& pass, int64_t row, const AxisTaps& rt, int64_t col,
            int skip) const {
    const AxisTaps ct = d_.cols.taps(col);
    const int64_t src_w = d_.cols.src_size, lane_step = d_.cols.phase_dst_step();
    float* dst = c.dst + row * d_.cols.dst_size + col;
    float32x4_t acc[R][V];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const float32x4_t bias = vdupq_n_f32(c.bias ? c.bias[r] : 0.0f);
#pragma GCC unroll 16
      for (int v = 0; v < V; ++v)
        acc[r][v] =
            pass.opens ? bias : load_dst(dst + r * dst_plane_ + 4 * v * lane_step, lane_step);
    }
    const float* src = c.src + pass.first * src_plane_ + rt.src * src_w + ct.src;
    const float* weights = pass.weights + (rt.tap * kernel_ + ct.tap) * R;
    for (int64_t channel = 0; channel < pass.count; ++channel) {
      for (int64_t i = 0; i < rt.count; ++i) {
        const float* s_row = src + channel * src_plane_ + i * rt.src_step * src_w;
        const float* w_row = weights + (channel * taps_ + i * rt.tap_step * kernel_) * R;
        for (int64_t j = 0; j < ct.count; ++j) {
          float32x4_t x[V];
#pragma GCC unroll 16
          for (int v = 0; v < V; ++v)
            x[v] = load_lanes<Step>(s_row + j * ct.src_step + 4 * Step * v);
          multiply_add_rows<R, V>(acc, x, w_row + j * ct.tap_step * R);
        }
      }
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
      for (int v = 0; v < V; ++v)
        store_dst(dst + r * dst_plane_ + 4 * v * lane_step, lane_step,
                  pass.closes ? activate(act_, acc[r][v]) : acc[r][v], skip - 4 * v);
  }

  // R channels at one destination position, whatever its taps, over every source channel.
  template <int R>
  void point(const ChannelTile& c, int64_t row, const AxisTaps& rt, int64_t col) const {
    const AxisTaps ct = d_.cols.taps(col);
    const int64_t src_w = d_.cols.src_size;
    for (int r = 0; r < R; ++r) {
      float sum = c.bias ? c.bias[r] : 0.0f;
      const float* weight = c.weight + r * d_.weight_dst;
      for (int64_t channel = 0; channel < d_.src_channels; ++channel)
        for (int64_t i = 0; i < rt.count; ++i)
          for (int64_t j = 0; j < ct.count; ++j)
            sum += c.src[channel * src_plane_ + (rt.src + i * rt.src_step) * src_w + ct.src +
                         j * ct.src_step] *
                   weight[channel * d_.weight_src + (rt.tap + i * rt.tap_step) * kernel_ + ct.tap +
                          j * ct.tap_step];
      apply_conv_activation(act_, &sum, 1);
      c.dst[r * dst_plane_ + row * d_.cols.dst_size + col] = sum;
    }
  }

  const Direct& d_;
  ConvActivation act_;
  int64_t kernel_, taps_, src_plane_, dst_plane_;
};

bool is_depthwise3x3(const Direct& d) {
  return !d.rows.transposed && d.src_channels == 1 && d.dst_channels == 1 && d.rows.kernel == 3 &&
         (d.rows.stride == 1 || d.rows.stride == 2) && d.cols.stride == d.rows.stride;
}

}  // namespace

void direct(const Direct& d, const float* src, const float* weight, const float* bias,
            ConvActivation act, float* dst) {
  const DirectRunner runner(d, act);
  const int64_t src_plane = d.rows.src_size * d.cols.src_size;
  const int64_t dst_plane = d.rows.dst_size * d.cols.dst_size;
  const int64_t taps = d.rows.kernel * d.rows.kernel;
  for (int64_t n = 0; n < d.batch; ++n)
    for (int64_t g = 0; g < d.groups; ++g) {
      const float* group_src = src + (n * d.groups + g) * d.src_channels * src_plane;
      const float* group_weight = weight + g * d.src_channels * d.dst_channels * taps;
      const int64_t first_dst = g * d.dst_channels;
      const auto tile = [&](int64_t channel) {
        return ChannelTile{group_src, group_weight + channel * d.weight_dst,
                           bias ? bias + first_dst + channel : nullptr,
                           dst + (n * d.groups * d.dst_channels + first_dst + channel) * dst_plane};
      };
      if (is_depthwise3x3(d)) {
        if (d.rows.stride == 1) {
          runner.depthwise3x3<1>(tile(0));
        } else {
          runner.depthwise3x3<2>(tile(0));
        }
        continue;
      }
      neon::for_each_tile<8, 4, 1>(
          d.dst_channels, [&]<int R>(int64_t channel) { runner.channels<R>(tile(channel)); });
    }
}

}  // namespace emt::conv_neon
