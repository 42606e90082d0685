#include "ops/core/tensor.h"

namespace emt {

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

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
