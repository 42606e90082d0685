// Stratified splits that keep groups of related images (near-duplicates, one patient) together:
// a group split across train and test lets the model be scored on images it has trained on.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "engine/data/split.h"

namespace emt {

// Like stratified_split, but whole groups are assigned. groups[i] is image i's group id (any
// ints). A group's stratum is its majority label (ties: the smaller label). Per stratum the
// groups are shuffled with the seed, stably ordered largest first (big groups are hardest to
// fit), and each goes to the split furthest below its target image count (stratum size times its
// fraction; ties go to the split furthest below its overall target, then train, val, test). With
// singleton groups this reproduces the per-class proportions to within one image. Splits are
// sorted ascending. Throws std::invalid_argument for fractions as stratified_split does or for
// label/group spans of different lengths.
SplitIndices grouped_stratified_split(std::span<const int> labels, std::span<const int> groups,
                                      double train_fraction, double val_fraction, uint64_t seed);

// Cross-validation folds. The images are cut into k parts of whole groups, stratified the same
// way; fold i tests on part i, validates on part (i + 1) mod k and trains on the other k - 2.
// Across the k folds every image is tested exactly once and validated exactly once.
//
// The paper's protocol (4 folds, 75% train / 12.5% val / 12.5% test each) is k = 8 taking the
// even folds 0, 2, 4, 6: their test and val parts (0|1, 2|3, 4|5, 6|7) are the four quarters of
// a plain 4-fold cross-validation, each held-out quarter halved into validation and test. Running
// all 8 folds tests every image. Throws std::invalid_argument if k < 3 (there would be no
// training part) or the spans differ in length.
std::vector<SplitIndices> grouped_kfold(std::span<const int> labels, std::span<const int> groups,
                                        int k, uint64_t seed);

// Group ids from names, e.g. a manifest's group column: equal names share an id, and an empty
// name is a group of its own. Ids count up from 0 in order of first appearance.
std::vector<int> group_ids(std::span<const std::string> names);

// The finest grouping coarser than both: images sharing a group in a or in b (or linked through
// a chain of such) share one, e.g. manifest groups joined with near-duplicate groups. Ids count
// up from 0 in order of first appearance. Throws std::invalid_argument if the lengths differ.
std::vector<int> combine_groups(std::span<const int> a, std::span<const int> b);

}  // namespace emt
