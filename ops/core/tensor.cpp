#include "ops/core/tensor.h"

#include <bit>

#include "ops/core/checked_size.h"

namespace emt {

int64_t shape_numel(const Shape& shape) { return checked_product(shape, "a tensor shape"); }

std::string shape_str(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

const char* layout_name(Layout layout) {
  return layout == Layout::kChannelBlocked ? "nChw16c" : "nchw";
}

const char* dtype_name(DataType dtype) { return dtype == DataType::kBF16 ? "bf16" : "f32"; }

uint16_t to_bf16(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  // Quiet the NaN, so that truncating its payload cannot turn it into an infinity.
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);
  const uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

float from_bf16(uint16_t value) { return std::bit_cast<float>(static_cast<uint32_t>(value) << 16); }

bool can_block_channels(const Shape& shape) {
  return shape.size() == 4 && shape[1] % kLayoutBlock == 0;
}

namespace {

// Calls f(plain_index, blocked_index) for every element of a blockable shape.
template <class F>
void for_each_blocked(const Shape& shape, F f) {
  const int64_t n = shape[0], c = shape[1], hw = shape[2] * shape[3];
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch) {
      const int64_t plain = (b * c + ch) * hw;
      const int64_t blocked =
          ((b * (c / kLayoutBlock) + ch / kLayoutBlock) * hw) * kLayoutBlock + ch % kLayoutBlock;
      for (int64_t i = 0; i < hw; ++i) f(plain + i, blocked + i * kLayoutBlock);
    }
}

}  // namespace

void block_channels(const float* plain, const Shape& shape, float* blocked) {
  for_each_blocked(shape, [&](int64_t p, int64_t b) { blocked[b] = plain[p]; });
}

void unblock_channels(const float* blocked, const Shape& shape, float* plain) {
  for_each_blocked(shape, [&](int64_t p, int64_t b) { plain[p] = blocked[b]; });
}

}  // namespace emt
