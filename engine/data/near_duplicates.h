// Finds images that are copies of one another up to resizing, small shifts, noise or overlays.
// BUSI holds hundreds of such pairs, some across classes; a split that separates them leaks test
// images into training, so they are grouped and kept together (see group_split.h).
#pragma once

#include <opencv2/core.hpp>
#include <span>
#include <vector>

namespace emt {

struct NearDuplicateOptions {
  double threshold = 0.95;  // Pearson correlation of the signatures above which images pair up
  int side = 48;            // signature resolution: coarse enough to ignore speckle and shifts
};

struct NearDuplicatePair {
  int a = 0, b = 0;  // a < b
  double correlation = 0;
};

struct NearDuplicateGroups {
  // Per image, its group: ids count up from 0 in order of each group's first image, so a
  // singleton is a group of its own.
  std::vector<int> group;
  int group_count = 0;                   // distinct ids
  int merged_count = 0;                  // groups of two or more images
  std::vector<NearDuplicatePair> pairs;  // every pair above the threshold, sorted by (a, b)
};

// side*side floats: the grey image resampled straight to side x side with an antialiased linear
// (triangle) filter, minus its mean, scaled to unit norm, so a dot product of two signatures is
// their Pearson correlation. Aspect ratio is deliberately dropped: a crop or re-export of
// slightly different size still matches. A constant image gives all zeros and correlates with
// nothing. Throws std::invalid_argument unless image is non-empty CV_8UC1 and side > 0.
std::vector<float> image_signature(const cv::Mat& image, int side = 48);

// Correlates every pair (in parallel) and joins pairs above the threshold by union-find, so a
// group is a connected component: members may correlate less with each other than the threshold.
NearDuplicateGroups find_near_duplicates(std::span<const cv::Mat> images,
                                         const NearDuplicateOptions& opts = {});

}  // namespace emt
