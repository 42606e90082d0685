#include "engine/data/group_split.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <stdexcept>

namespace emt {
namespace {

struct Group {
  std::vector<int> members;
  int stratum = 0;
};

void check_lengths(std::span<const int> labels, std::span<const int> groups) {
  if (labels.size() != groups.size()) {
    throw std::invalid_argument(
        "labels and groups differ in length: " + std::to_string(labels.size()) + " vs " +
        std::to_string(groups.size()));
  }
}

// Fisher-Yates on raw mt19937_64 output, as in split.cpp: std::shuffle's algorithm is up to the
// standard library, and a seed must name the same split everywhere.
void shuffle(std::vector<Group*>& v, uint64_t seed, int stratum) {
  std::seed_seq seq{seed & 0xffffffffu, seed >> 32, static_cast<uint64_t>(stratum) & 0xffffffffu};
  std::mt19937_64 rng(seq);
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng() % i]);
}

// Deals whole groups into bins whose image counts approach fractions[b] of every stratum.
std::vector<std::vector<int>> deal_groups(std::span<const int> labels, std::span<const int> groups,
                                          const std::vector<double>& fractions, uint64_t seed) {
  check_lengths(labels, groups);
  std::map<int, Group> by_id;
  for (size_t i = 0; i < labels.size(); ++i)
    by_id[groups[i]].members.push_back(static_cast<int>(i));

  std::map<int, std::vector<Group*>> strata;
  for (auto& [id, g] : by_id) {
    std::map<int, int> votes;
    for (int i : g.members) ++votes[labels[static_cast<size_t>(i)]];
    int best = 0;
    for (const auto& [label, n] : votes) {
      if (n > best) {
        best = n;
        g.stratum = label;
      }
    }
    strata[g.stratum].push_back(&g);
  }

  const size_t bins = fractions.size();
  const double total = static_cast<double>(labels.size());
  std::vector<std::vector<int>> out(bins);
  std::vector<double> overall(bins, 0.0);
  for (auto& [stratum, members] : strata) {
    shuffle(members, seed, stratum);
    std::stable_sort(members.begin(), members.end(), [](const Group* a, const Group* b) {
      return a->members.size() > b->members.size();
    });
    double stratum_size = 0;
    for (const Group* g : members) stratum_size += static_cast<double>(g->members.size());
    std::vector<double> count(bins, 0.0);
    for (const Group* g : members) {
      size_t pick = 0;
      for (size_t b = 1; b < bins; ++b) {
        const double gap = stratum_size * fractions[b] - count[b];
        const double best = stratum_size * fractions[pick] - count[pick];
        if (gap > best + 1e-9) {
          pick = b;
        } else if (gap > best - 1e-9 && total * fractions[b] - overall[b] >
                                            total * fractions[pick] - overall[pick] + 1e-9) {
          pick = b;
        }
      }
      const double n = static_cast<double>(g->members.size());
      count[pick] += n;
      overall[pick] += n;
      out[pick].insert(out[pick].end(), g->members.begin(), g->members.end());
    }
  }
  for (std::vector<int>& bin : out) std::sort(bin.begin(), bin.end());
  return out;
}

}  // namespace

SplitIndices grouped_stratified_split(std::span<const int> labels, std::span<const int> groups,
                                      double train_fraction, double val_fraction, uint64_t seed) {
  auto in_open_unit = [](double f) { return f > 0 && f < 1; };
  if (!in_open_unit(train_fraction) || !in_open_unit(val_fraction) ||
      train_fraction + val_fraction > 1 + 1e-9) {
    throw std::invalid_argument(
        "split fractions must lie in (0, 1) and sum to at most 1, got train " +
        std::to_string(train_fraction) + " val " + std::to_string(val_fraction));
  }
  const double test_fraction = std::max(0.0, 1 - train_fraction - val_fraction);
  std::vector<std::vector<int>> bins =
      deal_groups(labels, groups, {train_fraction, val_fraction, test_fraction}, seed);
  return {std::move(bins[0]), std::move(bins[1]), std::move(bins[2])};
}

std::vector<SplitIndices> grouped_kfold(std::span<const int> labels, std::span<const int> groups,
                                        int k, uint64_t seed) {
  if (k < 3) {
    throw std::invalid_argument("grouped_kfold needs k >= 3 (test, val and train parts), got " +
                                std::to_string(k));
  }
  const std::vector<std::vector<int>> parts =
      deal_groups(labels, groups, std::vector<double>(static_cast<size_t>(k), 1.0 / k), seed);
  std::vector<SplitIndices> folds(static_cast<size_t>(k));
  for (size_t i = 0; i < parts.size(); ++i) {
    const size_t val = (i + 1) % parts.size();
    SplitIndices& fold = folds[i];
    fold.test = parts[i];
    fold.val = parts[val];
    for (size_t p = 0; p < parts.size(); ++p) {
      if (p != i && p != val) fold.train.insert(fold.train.end(), parts[p].begin(), parts[p].end());
    }
    std::sort(fold.train.begin(), fold.train.end());
  }
  return folds;
}

std::vector<int> group_ids(std::span<const std::string> names) {
  std::map<std::string, int> ids;
  std::vector<int> out;
  out.reserve(names.size());
  int next = 0;
  for (const std::string& name : names) {
    if (name.empty()) {
      out.push_back(next++);
    } else {
      const auto [it, fresh] = ids.emplace(name, next);
      if (fresh) ++next;
      out.push_back(it->second);
    }
  }
  return out;
}

std::vector<int> combine_groups(std::span<const int> a, std::span<const int> b) {
  if (a.size() != b.size()) {
    throw std::invalid_argument("combine_groups: groupings differ in length: " +
                                std::to_string(a.size()) + " vs " + std::to_string(b.size()));
  }
  const size_t n = a.size();
  std::vector<int> parent(n);
  std::iota(parent.begin(), parent.end(), 0);
  const auto find = [&](int x) {
    while (parent[static_cast<size_t>(x)] != x) {
      parent[static_cast<size_t>(x)] = parent[static_cast<size_t>(parent[static_cast<size_t>(x)])];
      x = parent[static_cast<size_t>(x)];
    }
    return x;
  };
  for (std::span<const int> grouping : {a, b}) {
    std::map<int, int> first;
    for (size_t i = 0; i < n; ++i) {
      const auto [it, fresh] = first.emplace(grouping[i], static_cast<int>(i));
      if (!fresh) {
        const int x = find(it->second), y = find(static_cast<int>(i));
        parent[static_cast<size_t>(std::max(x, y))] = std::min(x, y);
      }
    }
  }
  std::vector<int> id_of_root(n, -1), out(n);
  int next = 0;
  for (size_t i = 0; i < n; ++i) {
    const auto root = static_cast<size_t>(find(static_cast<int>(i)));
    if (id_of_root[root] < 0) id_of_root[root] = next++;
    out[i] = id_of_root[root];
  }
  return out;
}

}  // namespace emt
