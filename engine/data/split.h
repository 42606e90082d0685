// Seeded, stratified train/val/test splits: each class is cut in the same proportions, so a
// small or imbalanced data set still gives every split both classes.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace emt {

// Indices into the labels, each split in ascending order.
struct SplitIndices {
  std::vector<int> train, val, test;
};

// Per class: shuffle with the seed, then cut train_fraction and val_fraction (rounded to the
// nearest sample) off the front; the rest is test. Every index lands in exactly one split, and
// the result is the same on every platform for a given seed. Throws std::invalid_argument unless
// both fractions lie in (0, 1) and sum to at most 1.
SplitIndices stratified_split(std::span<const int> labels, double train_fraction,
                              double val_fraction, uint64_t seed);

}  // namespace emt
