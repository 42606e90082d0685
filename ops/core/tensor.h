// A float32 tensor view: the data lives in an arena or buffer owned elsewhere.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace emt {

using Shape = std::vector<int64_t>;

// How a rank-4 [N, C, H, W] tensor lies in memory. Backends that run faster on channel blocks
// (oneDNN's nChw16c on AVX-512) keep activations blocked between their ops, so that no op pays
// a reorder each way; everything else, and every tensor the engine reads or writes, is plain.
enum class Layout {
  kPlain,           // row-major [N, C, H, W]
  kChannelBlocked,  // [N, C / kLayoutBlock, H, W, kLayoutBlock]; C is a multiple of the block
};
inline constexpr int64_t kLayoutBlock = 16;

const char* layout_name(Layout layout);  // "nchw", "nChw16c"
// Whether a tensor of this shape can take the blocked layout: rank 4 and whole channel blocks,
// so that it has the same size in either layout and elementwise ops need not tell them apart.
bool can_block_channels(const Shape& shape);
// Plain copies of a blocked tensor and back; `to` has the shape's numel floats.
void block_channels(const float* plain, const Shape& shape, float* blocked);
void unblock_channels(const float* blocked, const Shape& shape, float* plain);

int64_t shape_numel(const Shape& shape);
// "[2,3,64,64]": the form used in every error message and plan table.
std::string shape_str(const Shape& shape);

struct Tensor {
  float* data = nullptr;
  Shape shape;
  Layout layout = Layout::kPlain;

  int64_t numel() const { return shape_numel(shape); }
  int64_t dim(size_t axis) const { return shape[axis]; }
  size_t rank() const { return shape.size(); }
  bool empty() const { return data == nullptr; }
};

}  // namespace emt
