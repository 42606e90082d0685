// A float32 tensor view: the data lives in an arena or buffer owned elsewhere.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace emt {

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& shape);
// "[2,3,64,64]": the form used in every error message and plan table.
std::string shape_str(const Shape& shape);

struct Tensor {
  float* data = nullptr;
  Shape shape;

  int64_t numel() const { return shape_numel(shape); }
  int64_t dim(size_t axis) const { return shape[axis]; }
  size_t rank() const { return shape.size(); }
  bool empty() const { return data == nullptr; }
};

}  // namespace emt
