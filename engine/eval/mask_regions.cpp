#include "engine/eval/mask_regions.h"

#include <stdexcept>
#include <string>
#include <vector>

namespace emt {

int64_t keep_largest_region(std::span<float> probs, int64_t height, int64_t width,
                            float threshold) {
  if (height <= 0 || width <= 0 || static_cast<int64_t>(probs.size()) != height * width)
    throw std::invalid_argument("keep_largest_region: " + std::to_string(probs.size()) +
                                " values for a " + std::to_string(height) + " x " +
                                std::to_string(width) + " mask");
  // label 0: background; regions are numbered from 1 in the order their first pixel is met.
  std::vector<int32_t> label(probs.size(), 0);
  std::vector<int64_t> region_size{0};
  std::vector<int64_t> stack;
  for (int64_t start = 0; start < height * width; ++start) {
    if (label[start] != 0 || !(probs[start] >= threshold)) continue;
    const auto region = static_cast<int32_t>(region_size.size());
    int64_t size = 0;
    label[start] = region;
    stack.assign(1, start);
    while (!stack.empty()) {
      const int64_t p = stack.back();
      stack.pop_back();
      ++size;
      const int64_t y = p / width, x = p % width;
      for (int64_t ny = y - 1; ny <= y + 1; ++ny)
        for (int64_t nx = x - 1; nx <= x + 1; ++nx) {
          if (ny < 0 || ny >= height || nx < 0 || nx >= width) continue;
          const int64_t q = ny * width + nx;
          if (label[q] != 0 || !(probs[q] >= threshold)) continue;
          label[q] = region;
          stack.push_back(q);
        }
    }
    region_size.push_back(size);
  }
  const auto regions = static_cast<int64_t>(region_size.size()) - 1;
  if (regions <= 1) return regions;
  int32_t largest = 1;
  for (int32_t r = 2; r <= regions; ++r)
    if (region_size[r] > region_size[largest]) largest = r;
  for (size_t p = 0; p < probs.size(); ++p)
    if (label[p] != 0 && label[p] != largest) probs[p] = 0.0f;
  return regions;
}

}  // namespace emt
