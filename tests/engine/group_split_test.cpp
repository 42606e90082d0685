#include "engine/data/group_split.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <set>
#include <string>

#include "engine/data/split.h"

namespace emt {
namespace {

// ~320 images in groups of 1-4 (mostly singletons, as near-duplicates are in BUSI), about a
// third malignant; every seventh group mixes classes. Group ids are scattered, not 0..n-1.
struct Data {
  std::vector<int> labels, groups;
  int max_group = 0;
};

Data make_data() {
  Data d;
  for (int g = 0; d.labels.size() < 320; ++g) {
    const int size = g % 5 == 0 ? 1 + g % 4 : 1;
    const int label = (g * 37 % 11) < 4 ? 1 : 0;
    for (int m = 0; m < size; ++m) {
      d.labels.push_back(g % 7 == 3 && m == 1 ? 1 - label : label);
      d.groups.push_back(1000 - 3 * g);
    }
    d.max_group = std::max(d.max_group, size);
  }
  return d;
}

std::vector<int> all_of(const SplitIndices& s) {
  std::vector<int> all = s.train;
  all.insert(all.end(), s.val.begin(), s.val.end());
  all.insert(all.end(), s.test.begin(), s.test.end());
  std::sort(all.begin(), all.end());
  return all;
}

std::vector<int> iota(size_t n) {
  std::vector<int> v(n);
  std::iota(v.begin(), v.end(), 0);
  return v;
}

// Which split each group landed in; fails if a group lands in two.
void expect_groups_whole(const SplitIndices& s, const std::vector<int>& groups) {
  std::map<int, int> where;
  int part = 0;
  for (const std::vector<int>* p : {&s.train, &s.val, &s.test}) {
    for (int i : *p) {
      const auto [it, fresh] = where.emplace(groups[static_cast<size_t>(i)], part);
      EXPECT_TRUE(fresh || it->second == part) << "group " << it->first << " straddles splits";
    }
    ++part;
  }
}

int count_label(const std::vector<int>& labels, const std::vector<int>& indices, int label) {
  return static_cast<int>(std::count_if(indices.begin(), indices.end(), [&](int i) {
    return labels[static_cast<size_t>(i)] == label;
  }));
}

TEST(GroupSplit, KeepsGroupsWholeAndCoversEveryImageOnce) {
  const Data d = make_data();
  const SplitIndices s = grouped_stratified_split(d.labels, d.groups, 0.7, 0.15, 42);
  EXPECT_EQ(all_of(s), iota(d.labels.size()));
  for (const std::vector<int>* p : {&s.train, &s.val, &s.test}) {
    EXPECT_TRUE(std::is_sorted(p->begin(), p->end()));
  }
  expect_groups_whole(s, d.groups);
}

TEST(GroupSplit, EveryClassIsCutInProportion) {
  const Data d = make_data();
  const SplitIndices s = grouped_stratified_split(d.labels, d.groups, 0.7, 0.15, 42);
  // Whole groups overshoot by at most one group, and mixed groups blur the classes a little.
  const double tolerance = d.max_group + 1;
  for (int label : {0, 1}) {
    const int n = count_label(d.labels, iota(d.labels.size()), label);
    for (const auto& [part, fraction] :
         {std::pair{&s.train, 0.7}, {&s.val, 0.15}, {&s.test, 0.15}}) {
      EXPECT_LE(std::abs(count_label(d.labels, *part, label) - n * fraction), tolerance)
          << "class " << label << " fraction " << fraction;
    }
  }
}

TEST(GroupSplit, SingletonsMatchThePlainStratifiedCounts) {
  const Data d = make_data();
  const std::vector<int> singletons = iota(d.labels.size());
  const SplitIndices g = grouped_stratified_split(d.labels, singletons, 0.6, 0.2, 3);
  const SplitIndices p = stratified_split(d.labels, 0.6, 0.2, 3);
  for (int label : {0, 1}) {
    EXPECT_LE(
        std::abs(count_label(d.labels, g.train, label) - count_label(d.labels, p.train, label)), 1);
    EXPECT_LE(std::abs(count_label(d.labels, g.val, label) - count_label(d.labels, p.val, label)),
              1);
  }
}

TEST(GroupSplit, SeedDecidesTheSplit) {
  const Data d = make_data();
  const SplitIndices a = grouped_stratified_split(d.labels, d.groups, 0.7, 0.15, 42);
  const SplitIndices b = grouped_stratified_split(d.labels, d.groups, 0.7, 0.15, 42);
  const SplitIndices c = grouped_stratified_split(d.labels, d.groups, 0.7, 0.15, 43);
  EXPECT_EQ(a.train, b.train);
  EXPECT_EQ(a.val, b.val);
  EXPECT_EQ(a.test, b.test);
  EXPECT_NE(a.train, c.train);
  EXPECT_NE(a.test, c.test);
}

TEST(GroupSplit, MajorityLabelDecidesAMixedGroupsStratum) {
  // One big mixed group (3 malignant, 1 benign) among singletons: it must stay whole, and it
  // counts as malignant, so benign is still cut by its own count.
  std::vector<int> labels = {1, 1, 0, 1}, groups = {9, 9, 9, 9};
  for (int i = 0; i < 40; ++i) {
    labels.push_back(i % 4 == 0 ? 1 : 0);
    groups.push_back(100 + i);
  }
  const SplitIndices s = grouped_stratified_split(labels, groups, 0.5, 0.25, 1);
  expect_groups_whole(s, groups);
  EXPECT_EQ(all_of(s), iota(labels.size()));
  // 30 benign singletons + 1 benign image travelling with the group.
  EXPECT_NEAR(count_label(labels, s.train, 0), 15, 2);
}

TEST(GroupSplit, InvalidInputsThrow) {
  const Data d = make_data();
  EXPECT_THROW(grouped_stratified_split(d.labels, d.groups, 0.8, 0.3, 1), std::invalid_argument);
  EXPECT_THROW(grouped_stratified_split(d.labels, d.groups, 0.0, 0.3, 1), std::invalid_argument);
  const std::vector<int> short_groups(d.labels.size() - 1, 0);
  EXPECT_THROW(grouped_stratified_split(d.labels, short_groups, 0.7, 0.15, 1),
               std::invalid_argument);
  EXPECT_THROW(grouped_kfold(d.labels, short_groups, 8, 1), std::invalid_argument);
  EXPECT_THROW(grouped_kfold(d.labels, d.groups, 2, 1), std::invalid_argument);
  const SplitIndices none = grouped_stratified_split({}, {}, 0.7, 0.15, 1);
  EXPECT_TRUE(none.train.empty() && none.val.empty() && none.test.empty());
}

// ---------------------------------------------------------------------------------------------
// k-fold

TEST(GroupSplitKFold, EveryImageIsTestedAndValidatedExactlyOnce) {
  const Data d = make_data();
  const std::vector<SplitIndices> folds = grouped_kfold(d.labels, d.groups, 8, 42);
  ASSERT_EQ(folds.size(), 8u);
  std::vector<int> tested(d.labels.size(), 0), validated(d.labels.size(), 0);
  for (const SplitIndices& f : folds) {
    EXPECT_EQ(all_of(f), iota(d.labels.size()));
    expect_groups_whole(f, d.groups);
    for (int i : f.test) ++tested[static_cast<size_t>(i)];
    for (int i : f.val) ++validated[static_cast<size_t>(i)];
    // 75 / 12.5 / 12.5, give or take a group.
    const double n = static_cast<double>(d.labels.size());
    EXPECT_NEAR(static_cast<double>(f.test.size()), n / 8, d.max_group + 1);
    EXPECT_NEAR(static_cast<double>(f.val.size()), n / 8, d.max_group + 1);
    EXPECT_NEAR(static_cast<double>(f.train.size()), n * 0.75, 2 * (d.max_group + 1));
  }
  EXPECT_EQ(std::count(tested.begin(), tested.end(), 1), static_cast<long>(tested.size()));
  EXPECT_EQ(std::count(validated.begin(), validated.end(), 1), static_cast<long>(tested.size()));
  // A group is tested in one fold only.
  std::map<int, std::set<size_t>> fold_of_group;
  for (size_t f = 0; f < folds.size(); ++f) {
    for (int i : folds[f].test) fold_of_group[d.groups[static_cast<size_t>(i)]].insert(f);
  }
  for (const auto& [g, fs] : fold_of_group) EXPECT_EQ(fs.size(), 1u) << "group " << g;
}

TEST(GroupSplitKFold, PartsAreStratifiedAndChained) {
  const Data d = make_data();
  const std::vector<SplitIndices> folds = grouped_kfold(d.labels, d.groups, 4, 7);
  const int malignant = count_label(d.labels, iota(d.labels.size()), 1);
  for (size_t i = 0; i < folds.size(); ++i) {
    EXPECT_NEAR(count_label(d.labels, folds[i].test, 1), malignant / 4.0, d.max_group + 1);
    // Fold i validates on the part fold i + 1 tests on.
    EXPECT_EQ(folds[i].val, folds[(i + 1) % folds.size()].test);
  }
}

TEST(GroupSplitKFold, PaperFoldsHalveEachHeldOutQuarter) {
  // Folds 0, 2, 4, 6 of k = 8: their val and test parts tile the data exactly once.
  const Data d = make_data();
  const std::vector<SplitIndices> folds = grouped_kfold(d.labels, d.groups, 8, 42);
  std::vector<int> held_out;
  for (size_t f : {0u, 2u, 4u, 6u}) {
    held_out.insert(held_out.end(), folds[f].val.begin(), folds[f].val.end());
    held_out.insert(held_out.end(), folds[f].test.begin(), folds[f].test.end());
  }
  std::sort(held_out.begin(), held_out.end());
  EXPECT_EQ(held_out, iota(d.labels.size()));
}

TEST(GroupSplitKFold, SeedDecidesTheFolds) {
  const Data d = make_data();
  const auto a = grouped_kfold(d.labels, d.groups, 8, 42);
  const auto b = grouped_kfold(d.labels, d.groups, 8, 42);
  const auto c = grouped_kfold(d.labels, d.groups, 8, 43);
  for (size_t f = 0; f < a.size(); ++f) {
    EXPECT_EQ(a[f].test, b[f].test);
    EXPECT_EQ(a[f].train, b[f].train);
  }
  EXPECT_NE(a[0].test, c[0].test);
}

// ---------------------------------------------------------------------------------------------
// Group ids

TEST(GroupSplitIds, NamesShareIdsAndEmptyNamesStandAlone) {
  const std::vector<std::string> names = {"p1", "", "p2", "p1", "", "p2", "p3"};
  EXPECT_EQ(group_ids(names), (std::vector<int>{0, 1, 2, 0, 3, 2, 4}));
}

TEST(GroupSplitIds, CombiningJoinsThroughEitherGrouping) {
  // a links 0-2 and 3-4; b links 2-3 and 5-6: 0, 2, 3, 4 become one group.
  const std::vector<int> a = {10, 11, 10, 12, 12, 13, 14};
  const std::vector<int> b = {0, 1, 2, 2, 3, 4, 4};
  EXPECT_EQ(combine_groups(a, b), (std::vector<int>{0, 1, 0, 0, 0, 2, 2}));
  EXPECT_THROW(combine_groups(a, std::vector<int>{1}), std::invalid_argument);
}

}  // namespace
}  // namespace emt
