#include "mobile/preprocess.h"

#include <algorithm>
#include <array>
#include <cfloat>
#include <cmath>
#include <stdexcept>
#include <string>

// OpenCV's x86 build rounds a * b and then the sum; a fused multiply-add rounds once (GCC fuses by
// default, -ffp-contract=fast, wherever the target has FMA, as every aarch64 core does), which
// can move an area average sitting on .5 to the other grey level.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace emt::mobile {
namespace {

// OpenCV's fixed-point bilinear weights for uint8: 11 fractional bits (INTER_RESIZE_COEF_BITS).
constexpr int kCoefBits = 11;
constexpr float kCoefOne = 1 << kCoefBits;
// computeResizeAreaTab ignores a partly covered source pixel that contributes less than this.
constexpr double kAreaMinCover = 1e-3;

// saturate_cast<uchar>(float): cvRound (nearest, ties to even: the default rounding mode), then
// clamped.
int saturate_u8(float v) { return static_cast<int>(std::clamp(std::lrint(v), 0L, 255L)); }
int16_t coef_q11(float w) { return static_cast<int16_t>(std::lrint(w * kCoefOne)); }
int clamp_index(int i, int size) { return std::clamp(i, 0, size - 1); }

// pad_to_square without the copy: the image centred on a side x side square of zeros.
class PaddedSquare {
 public:
  explicit PaddedSquare(const GreyImage& image)
      : image_(image),
        side_(std::max(image.width, image.height)),
        top_((side_ - image.height) / 2),
        left_((side_ - image.width) / 2) {}
  int side() const { return side_; }
  // Row y of the square; nullptr when it is all padding.
  const uint8_t* row(int y) const {
    const int iy = y - top_;
    return iy >= 0 && iy < image_.height ? image_.pixels + iy * image_.row_stride : nullptr;
  }
  int at(const uint8_t* row, int x) const {
    const int ix = x - left_;
    return row != nullptr && ix >= 0 && ix < image_.width ? row[ix] : 0;
  }

 private:
  GreyImage image_;
  int side_, top_, left_;
};

// The scale factors cv::resize derives from the sizes (source pixels per destination pixel and
// its inverse), in the same double arithmetic, since its path choice and weights depend on them.
struct Scale {
  double inv, scale;
  Scale(int src, int dst) : inv(static_cast<double>(dst) / src), scale(1.0 / inv) {}
  // OpenCV's exact-box fast path: a factor within DBL_EPSILON of an integer (rounded half to even,
  // as saturate_cast<int> does).
  int integer_factor() const {
    const double rounded = std::nearbyint(scale);
    return std::abs(scale - rounded) < DBL_EPSILON ? static_cast<int>(rounded) : 0;
  }
};

// --- INTER_AREA, shrinking ----------------------------------------------------------------------

// The source pixels one destination pixel covers along an axis, weighted as OpenCV's
// computeResizeAreaTab weighs them: a partly covered pixel before the whole ones (head), the
// whole ones [begin, end), a partly covered one after them (tail).
struct AreaSpan {
  int head = -1, begin = 0, end = 0, tail = -1;
  float head_weight = 0, whole_weight = 0, tail_weight = 0;

  AreaSpan(int src_size, double scale, int d) {
    const double start = d * scale, stop = start + scale;
    const double cell = std::min(scale, src_size - start);
    end = std::min(static_cast<int>(std::floor(stop)), src_size - 1);
    begin = std::min(static_cast<int>(std::ceil(start)), end);
    whole_weight = static_cast<float>(1.0 / cell);
    if (begin - start > kAreaMinCover) {
      head = begin - 1;
      head_weight = static_cast<float>((begin - start) / cell);
    }
    if (stop - end > kAreaMinCover) {
      tail = end;
      tail_weight = static_cast<float>(std::min(std::min(stop - end, 1.0), cell) / cell);
    }
  }
  // f(source index, weight) in OpenCV's order, which fixes the float sums' rounding.
  template <typename F>
  void for_each(F&& f) const {
    if (head >= 0) f(head, head_weight);
    for (int s = begin; s < end; ++s) f(s, whole_weight);
    if (tail >= 0) f(tail, tail_weight);
  }
};

// OpenCV's resizeArea: per source row, the weighted sum along x; then the rows' weighted sum.
template <typename Store>
void shrink_area(const PaddedSquare& square, int n, const Scale& s, Store&& store) {
  for (int dy = 0; dy < n; ++dy) {
    const AreaSpan ys(square.side(), s.scale, dy);
    for (int dx = 0; dx < n; ++dx) {
      const AreaSpan xs(square.side(), s.scale, dx);
      float sum = 0.0f;
      ys.for_each([&](int sy, float beta) {
        const uint8_t* row = square.row(sy);
        if (row == nullptr) return;  // adds beta * 0
        float along_x = 0.0f;
        xs.for_each([&](int sx, float alpha) {
          along_x += static_cast<float>(square.at(row, sx)) * alpha;
        });
        sum += beta * along_x;
      });
      store(dy, dx, saturate_u8(sum));
    }
  }
}

// OpenCV's resizeAreaFast for an integer factor: exact box sums; a 2x2 box rounds half up (its
// SIMD kernel), larger ones multiply by the float 1 / area and round half to even.
template <typename Store>
void shrink_box(const PaddedSquare& square, int n, int factor, Store&& store) {
  const int area = factor * factor;
  const float inv_area = 1.0f / static_cast<float>(area);
  for (int dy = 0; dy < n; ++dy) {
    for (int dx = 0; dx < n; ++dx) {
      int sum = 0;
      for (int sy = dy * factor; sy < (dy + 1) * factor; ++sy) {
        const uint8_t* row = square.row(sy);
        if (row == nullptr) continue;
        for (int sx = dx * factor; sx < (dx + 1) * factor; ++sx) sum += square.at(row, sx);
      }
      store(dy, dx, factor == 2 ? (sum + 2) >> 2 : saturate_u8(static_cast<float>(sum) * inv_area));
    }
  }
}

// --- INTER_AREA, enlarging: OpenCV's bilinear variant -------------------------------------------

// Two source taps with 11-bit fixed-point weights. The weight of the second tap is the fraction of
// the destination pixel past the first tap's right edge: 0 unless the pixel straddles a source
// pixel boundary.
struct AreaUpTaps {
  int s0 = 0, s1 = 0;
  int16_t w0 = 0, w1 = 0;

  // clamp_weight: along x OpenCV also zeroes the weight at the last source pixel; along y it
  // only clamps the row index.
  AreaUpTaps(int src_size, const Scale& s, int d, bool clamp_weight) {
    s0 = static_cast<int>(std::floor(d * s.scale));
    float f = static_cast<float>((d + 1) - (s0 + 1) * s.inv);
    f = f <= 0 ? 0.0f : f - static_cast<float>(std::floor(f));
    if (clamp_weight && s0 >= src_size - 1) {
      f = 0.0f;
      s0 = src_size - 1;
    }
    s1 = clamp_index(s0 + 1, src_size);
    s0 = clamp_index(s0, src_size);
    w0 = coef_q11(1.0f - f);
    w1 = coef_q11(f);
  }
};

template <typename Store>
void enlarge_area(const PaddedSquare& square, int n, const Scale& s, Store&& store) {
  for (int dy = 0; dy < n; ++dy) {
    const AreaUpTaps ys(square.side(), s, dy, false);
    const uint8_t* row0 = square.row(ys.s0);
    const uint8_t* row1 = square.row(ys.s1);
    for (int dx = 0; dx < n; ++dx) {
      const AreaUpTaps xs(square.side(), s, dx, true);
      // Along x in full precision (8 + 11 bits) ...
      const int h0 = square.at(row0, xs.s0) * xs.w0 + square.at(row0, xs.s1) * xs.w1;
      const int h1 = square.at(row1, xs.s0) * xs.w0 + square.at(row1, xs.s1) * xs.w1;
      // ... along y as VResizeLinear<uchar> does it (scalar and SIMD alike): each row dropped to
      // 15 bits, multiplied, the high 16 bits kept, and the sum rounded off its last 2 bits.
      const int v = ((ys.w0 * (h0 >> 4)) >> 16) + ((ys.w1 * (h1 >> 4)) >> 16);
      store(dy, dx, (v + 2) >> 2);
    }
  }
}

// --- INTER_LINEAR on float ----------------------------------------------------------------------

// Half-pixel centres; indices clamped to the image.
struct LinearTaps {
  int s0 = 0, s1 = 0;
  float w0 = 1, w1 = 0;
  bool two = true;  // false: OpenCV reads one pixel (x past either border) instead of two

  LinearTaps() = default;
  LinearTaps(int src_size, double scale, int d, bool is_x) {
    float f = static_cast<float>((d + 0.5) * scale - 0.5);
    s0 = static_cast<int>(std::floor(f));
    f -= static_cast<float>(s0);
    if (is_x) {
      if (s0 < 0) {
        f = 0.0f;
        s0 = 0;
      }
      if (s0 >= src_size - 1) {
        f = 0.0f;
        s0 = src_size - 1;
      }
      two = s0 + 1 < src_size;
    }
    s1 = clamp_index(s0 + 1, src_size);
    s0 = clamp_index(s0, src_size);
    w0 = 1.0f - f;
    w1 = f;
  }
  float apply(const float* row) const { return two ? row[s0] * w0 + row[s1] * w1 : row[s0]; }
};

}  // namespace

void preprocess_grey(const GreyImage& image, int input_size, int channels, float mean, float std,
                     float* out) {
  if (image.pixels == nullptr || image.width <= 0 || image.height <= 0 ||
      image.row_stride < image.width || input_size <= 0 || channels <= 0 || !(std > 0) ||
      out == nullptr)
    throw std::invalid_argument(
        "preprocess_grey: image " + std::to_string(image.width) + "x" +
        std::to_string(image.height) + " (stride " + std::to_string(image.row_stride) +
        "), input size " + std::to_string(input_size) + ", " + std::to_string(channels) +
        " channels, std " + std::to_string(std) + (out == nullptr ? ", no output" : ""));

  std::array<float, 256> normalized;  // the engine's table, in the same float arithmetic
  for (int p = 0; p < 256; ++p) normalized[p] = (p / 255.0f - mean) / std;
  const int n = input_size;
  const auto store = [&](int dy, int dx, int level) { out[dy * n + dx] = normalized[level]; };

  const PaddedSquare square(image);
  const Scale s(square.side(), n);
  if (square.side() == n) {
    for (int y = 0; y < n; ++y)
      for (int x = 0; x < n; ++x) store(y, x, square.at(square.row(y), x));
  } else if (s.scale >= 1) {
    if (const int factor = s.integer_factor(); factor > 0)
      shrink_box(square, n, factor, store);
    else
      shrink_area(square, n, s, store);
  } else {
    enlarge_area(square, n, s, store);
  }

  const int64_t plane = int64_t{n} * n;
  for (int c = 1; c < channels; ++c) std::copy_n(out, plane, out + c * plane);
}

void restore_mask(const float* probs, int input_size, int width, int height, float threshold,
                  uint8_t* mask) {
  if (probs == nullptr || mask == nullptr || input_size <= 0 || width <= 0 || height <= 0)
    throw std::invalid_argument("restore_mask: input size " + std::to_string(input_size) +
                                ", image " + std::to_string(width) + "x" + std::to_string(height) +
                                (probs == nullptr || mask == nullptr ? ", null buffer" : ""));

  const int n = input_size;
  const int side = std::max(width, height);
  const int top = (side - height) / 2, left = (side - width) / 2;  // as pad_to_square
  const auto put = [&](int y, int x, float v) {
    mask[static_cast<int64_t>(y) * width + x] = v >= threshold ? 255 : 0;
  };
  const Scale s(n, side);

  if (side == n) {
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x) put(y, x, probs[(y + top) * n + x + left]);
    return;
  }
  if (s.integer_factor() == 2) {
    // cv::resize turns INTER_LINEAR at exactly half size into INTER_AREA's 2x2 box: the same
    // mean as bilinear weights of 1/2, but summed in its own orders (its SIMD kernel, 4 floats a
    // step, adds the rows' pairs first; the scalar tail adds left to right).
    const int simd_end = side / 4 * 4;
    for (int y = 0; y < height; ++y) {
      const float* r0 = probs + int64_t{2} * (y + top) * n;
      const float* r1 = r0 + n;
      for (int x = 0; x < width; ++x) {
        const int sx = 2 * (x + left);
        const float sum = x + left < simd_end ? (r0[sx] + r0[sx + 1]) + (r1[sx] + r1[sx + 1])
                                              : r0[sx] + r0[sx + 1] + r1[sx] + r1[sx + 1];
        put(y, x, sum * 0.25f);
      }
    }
    return;
  }
  // The columns' taps once per block of columns, on the stack.
  constexpr int kColumns = 256;
  std::array<LinearTaps, kColumns> xs;
  for (int x0 = 0; x0 < width; x0 += kColumns) {
    const int columns = std::min(kColumns, width - x0);
    for (int i = 0; i < columns; ++i) xs[i] = LinearTaps(n, s.scale, x0 + i + left, true);
    for (int y = 0; y < height; ++y) {
      const LinearTaps ys(n, s.scale, y + top, false);
      const float* row0 = probs + int64_t{ys.s0} * n;
      const float* row1 = probs + int64_t{ys.s1} * n;
      for (int i = 0; i < columns; ++i)
        put(y, x0 + i, xs[i].apply(row0) * ys.w0 + xs[i].apply(row1) * ys.w1);
    }
  }
}

}  // namespace emt::mobile
