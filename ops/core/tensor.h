// A tensor view: the data lives in an arena or buffer owned elsewhere. float32 unless the
// compiler chose bf16 for it (inference only), in which case `data` holds 2-byte elements.
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
// The element type. Everything the engine reads or writes, every parameter and every training
// tensor is kF32; an inference plan (CompileOptions::precision) may keep activations between
// oneDNN variants in bf16, which halves their traffic and runs the convolutions on AVX512-BF16
// or AMX. A bf16 tensor still lives in a float-sized slot and uses the first half of it.
enum class DataType { kF32, kBF16 };

const char* dtype_name(DataType dtype);  // "f32", "bf16"
// bf16 is the upper half of an IEEE float; to_bf16 rounds to nearest even (NaN stays NaN).
uint16_t to_bf16(float value);
float from_bf16(uint16_t value);

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
  DataType dtype = DataType::kF32;

  int64_t numel() const { return shape_numel(shape); }
  int64_t dim(size_t axis) const { return shape[axis]; }
  size_t rank() const { return shape.size(); }
  bool empty() const { return data == nullptr; }
};

}  // namespace emt
