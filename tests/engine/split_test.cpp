#include "engine/data/split.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>

namespace emt {
namespace {

// Three classes of unequal size, interleaved irregularly.
std::vector<int> make_labels() {
  std::vector<int> labels;
  for (int i = 0; i < 200; ++i) labels.push_back(i % 7 == 0 ? 2 : (i * 37 % 11) < 4 ? 1 : 0);
  return labels;
}

std::map<int, int> class_counts(const std::vector<int>& labels, const std::vector<int>& indices) {
  std::map<int, int> counts;
  for (int i : indices) ++counts[labels[i]];
  return counts;
}

std::vector<int> iota(size_t n) {
  std::vector<int> v(n);
  std::iota(v.begin(), v.end(), 0);
  return v;
}

TEST(StratifiedSplit, EveryClassIsCutInProportion) {
  const std::vector<int> labels = make_labels();
  const std::map<int, int> total = class_counts(labels, iota(labels.size()));
  ASSERT_EQ(total.size(), 3u);
  const SplitIndices s = stratified_split(labels, 0.7, 0.15, 42);
  for (const auto& [part, indices, fraction] :
       {std::tuple{"train", &s.train, 0.7}, {"val", &s.val, 0.15}, {"test", &s.test, 0.15}}) {
    std::map<int, int> counts = class_counts(labels, *indices);
    for (const auto& [label, n] : total) {
      EXPECT_LE(std::abs(counts[label] - n * fraction), 1.0)
          << part << " holds " << counts[label] << " of " << n << " in class " << label;
    }
  }
}

TEST(StratifiedSplit, SplitsAreDisjointCompleteAndSorted) {
  const std::vector<int> labels = make_labels();
  const SplitIndices s = stratified_split(labels, 0.6, 0.2, 7);
  std::vector<int> all = s.train;
  all.insert(all.end(), s.val.begin(), s.val.end());
  all.insert(all.end(), s.test.begin(), s.test.end());
  for (const std::vector<int>* part : {&s.train, &s.val, &s.test}) {
    EXPECT_TRUE(std::is_sorted(part->begin(), part->end()));
  }
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, iota(labels.size()));
}

TEST(StratifiedSplit, SeedDecidesTheSplit) {
  const std::vector<int> labels = make_labels();
  const SplitIndices a = stratified_split(labels, 0.7, 0.15, 42);
  const SplitIndices b = stratified_split(labels, 0.7, 0.15, 42);
  const SplitIndices c = stratified_split(labels, 0.7, 0.15, 43);
  EXPECT_EQ(a.train, b.train);
  EXPECT_EQ(a.val, b.val);
  EXPECT_EQ(a.test, b.test);
  EXPECT_NE(a.train, c.train);
  EXPECT_NE(a.test, c.test);
}

TEST(StratifiedSplit, TinyAndEmptyInputsStayComplete) {
  const std::vector<int> labels{0, 1, 1, 0, 5};
  const SplitIndices s = stratified_split(labels, 0.5, 0.25, 1);
  EXPECT_EQ(s.train.size() + s.val.size() + s.test.size(), labels.size());
  const SplitIndices none = stratified_split(std::vector<int>{}, 0.5, 0.25, 1);
  EXPECT_TRUE(none.train.empty() && none.val.empty() && none.test.empty());
  const SplitIndices no_test = stratified_split(make_labels(), 0.7, 0.3, 1);
  EXPECT_TRUE(no_test.test.empty());
}

TEST(StratifiedSplit, InvalidFractionsThrow) {
  const std::vector<int> labels = make_labels();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const auto& [train, val] : std::vector<std::pair<double, double>>{
           {0.0, 0.2}, {1.0, 0.1}, {-0.1, 0.5}, {0.5, 0.0}, {0.5, 1.2}, {0.8, 0.3}, {nan, 0.1}}) {
    EXPECT_THROW(stratified_split(labels, train, val, 42), std::invalid_argument)
        << "train " << train << " val " << val;
  }
}

}  // namespace
}  // namespace emt
