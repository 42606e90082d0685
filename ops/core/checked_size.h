// Sizes that come from files (shapes, counts, byte lengths) are multiplied and added here, so
// that an overflow is an error rather than a small wrong number that is then allocated.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <type_traits>

#include "ops/core/op_error.h"

namespace emt {

// An OpError, so that where an op's shape rule overflows, the compiler's report names the node.
class SizeOverflow : public OpError {
 public:
  explicit SizeOverflow(const std::string& what) : OpError(what + " overflows 64-bit sizes") {}
};

inline int64_t checked_mul(int64_t a, int64_t b, const char* what = "a size") {
  int64_t product = 0;
  if (__builtin_mul_overflow(a, b, &product)) throw SizeOverflow(what);
  return product;
}

inline int64_t checked_add(int64_t a, int64_t b, const char* what = "a size") {
  int64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) throw SizeOverflow(what);
  return sum;
}

// The product of a file's extents (any integer type), or nullopt when one is negative or the
// product overflows: for readers that word the refusal in their format's terms. A zero extent
// makes the product zero whatever the others are.
template <typename Extents>
std::optional<int64_t> product_if_representable(const Extents& extents) {
  static_assert(std::is_signed_v<typename Extents::value_type>, "extents are signed");
  if (std::any_of(extents.begin(), extents.end(), [](auto e) { return e < 0; })) return {};
  if (std::any_of(extents.begin(), extents.end(), [](auto e) { return e == 0; })) return 0;
  int64_t n = 1;
  for (auto e : extents) {
    if (__builtin_mul_overflow(n, static_cast<int64_t>(e), &n)) return {};
  }
  return n;
}

// The product of extents, each checked non-negative.
inline int64_t checked_product(std::span<const int64_t> extents, const char* what = "a shape") {
  int64_t n = 1;
  for (int64_t e : extents) {
    if (e < 0) throw OpError(std::string(what) + " has a negative extent " + std::to_string(e));
    n = checked_mul(n, e, what);
  }
  return n;
}

}  // namespace emt
