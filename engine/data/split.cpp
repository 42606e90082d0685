#include "engine/data/split.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <stdexcept>
#include <string>

namespace emt {
namespace {

// Fisher-Yates on raw std::mt19937_64 output rather than std::shuffle, whose algorithm each
// standard library chooses: a seed must name the same split everywhere. The modulo bias is
// below n / 2^64, far beneath notice.
void shuffle(std::vector<int>& v, uint64_t seed, int label) {
  std::seed_seq seq{seed & 0xffffffffu, seed >> 32, static_cast<uint64_t>(label) & 0xffffffffu};
  std::mt19937_64 rng(seq);
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng() % i]);
}

size_t rounded_share(size_t n, double fraction) {
  return static_cast<size_t>(std::llround(static_cast<double>(n) * fraction));
}

}  // namespace

SplitIndices stratified_split(std::span<const int> labels, double train_fraction,
                              double val_fraction, uint64_t seed) {
  auto in_open_unit = [](double f) { return f > 0 && f < 1; };
  // The tolerance accepts fractions that sum to 1 up to rounding, e.g. 0.7 + 0.3.
  if (!in_open_unit(train_fraction) || !in_open_unit(val_fraction) ||
      train_fraction + val_fraction > 1 + 1e-9) {
    throw std::invalid_argument(
        "split fractions must lie in (0, 1) and sum to at most 1, got train " +
        std::to_string(train_fraction) + " val " + std::to_string(val_fraction));
  }
  std::map<int, std::vector<int>> by_class;
  for (size_t i = 0; i < labels.size(); ++i) by_class[labels[i]].push_back(static_cast<int>(i));

  SplitIndices split;
  for (auto& [label, indices] : by_class) {
    shuffle(indices, seed, label);
    const size_t n = indices.size();
    const size_t n_train = std::min(n, rounded_share(n, train_fraction));
    const size_t n_val = std::min(n - n_train, rounded_share(n, val_fraction));
    const auto train_end = indices.begin() + static_cast<ptrdiff_t>(n_train);
    const auto val_end = train_end + static_cast<ptrdiff_t>(n_val);
    split.train.insert(split.train.end(), indices.begin(), train_end);
    split.val.insert(split.val.end(), train_end, val_end);
    split.test.insert(split.test.end(), val_end, indices.end());
  }
  for (std::vector<int>* part : {&split.train, &split.val, &split.test}) {
    std::sort(part->begin(), part->end());
  }
  return split;
}

}  // namespace emt
