// keep_largest_region against hand-drawn masks and against OpenCV's connected-component labelling
// (an independent implementation) on random masks.
#include "engine/eval/mask_regions.h"

#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// '#' is 0.9, '+' is 0.5 (on the threshold, so inside), '.' is 0.2.
std::vector<float> draw(const std::vector<std::string>& rows) {
  std::vector<float> probs;
  for (const std::string& row : rows)
    for (const char c : row) probs.push_back(c == '#' ? 0.9f : c == '+' ? 0.5f : 0.2f);
  return probs;
}

TEST(KeepLargestRegion, ClearsSmallerRegionsAndKeepsPixelsBelowTheThreshold) {
  std::vector<float> probs = draw({"##...",  //
                                   "#...+",  //
                                   "....+",  //
                                   ".+..#",  //
                                   "+...#"});
  // The right-hand column (4 pixels) beats the top-left corner (3) and the diagonal pair (2,
  // joined through their corners).
  EXPECT_EQ(emt::keep_largest_region(probs, 5, 5), 3);
  const std::vector<float> expected = {0,   0,   .2f, .2f, .2f,  //
                                       0,   .2f, .2f, .2f, .5f,  //
                                       .2f, .2f, .2f, .2f, .5f,  //
                                       .2f, 0,   .2f, .2f, .9f,  //
                                       0,   .2f, .2f, .2f, .9f};
  EXPECT_EQ(probs, expected);
}

TEST(KeepLargestRegion, LeavesOneRegionOrNoneUntouched) {
  for (const std::vector<std::string>& rows : {std::vector<std::string>{"...", "...", "..."},
                                               std::vector<std::string>{"#..", ".#.", "..#"}}) {
    std::vector<float> probs = draw(rows);
    const std::vector<float> before = probs;
    EXPECT_LE(emt::keep_largest_region(probs, 3, 3), 1);
    EXPECT_EQ(probs, before);
  }
}

TEST(KeepLargestRegion, TieKeepsTheFirstRegionInRowMajorOrder) {
  std::vector<float> probs = draw({"#.#"});
  EXPECT_EQ(emt::keep_largest_region(probs, 1, 3), 2);
  EXPECT_EQ(probs, (std::vector<float>{.9f, .2f, 0}));
}

TEST(KeepLargestRegion, RejectsASizeThatIsNotHeightTimesWidth) {
  std::vector<float> probs(11, 1.0f);
  EXPECT_THROW(emt::keep_largest_region(probs, 3, 4), std::invalid_argument);
  EXPECT_THROW(emt::keep_largest_region(probs, 0, 11), std::invalid_argument);
}

// Random blobs at several densities, non-square, against cv::connectedComponentsWithStats with
// 8-connectivity; masks whose largest size is shared are skipped (the tie rule is ours).
TEST(KeepLargestRegion, MatchesOpenCvConnectedComponents) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  int compared = 0, several = 0;
  for (int trial = 0; trial < 60; ++trial) {
    const int height = 7 + trial % 13, width = 5 + (trial * 7) % 17;
    const float density = 0.2f + 0.01f * static_cast<float>(trial % 40);
    std::vector<float> probs(static_cast<size_t>(height * width));
    for (float& p : probs)
      p = uniform(rng) < density ? 0.5f + 0.5f * uniform(rng) : 0.49f * uniform(rng);
    cv::Mat binary(height, width, CV_8U);
    for (int k = 0; k < height * width; ++k) binary.data[k] = probs[static_cast<size_t>(k)] >= 0.5f;
    cv::Mat labels, stats, centroids;
    const int count = cv::connectedComponentsWithStats(binary, labels, stats, centroids, 8, CV_32S);
    int largest = 0, largest_size = 0, holders = 0;
    for (int label = 1; label < count; ++label) {
      const int size = stats.at<int>(label, cv::CC_STAT_AREA);
      if (size > largest_size) {
        largest = label;
        largest_size = size;
        holders = 1;
      } else if (size == largest_size) {
        ++holders;
      }
    }
    std::vector<float> kept = probs;
    EXPECT_EQ(emt::keep_largest_region(kept, height, width), count - 1) << "trial " << trial;
    if (holders != 1) continue;
    ++compared;
    several += count > 2;
    for (int k = 0; k < height * width; ++k) {
      const int label = labels.at<int>(k / width, k % width);
      const float expected = label != 0 && label != largest ? 0.0f : probs[static_cast<size_t>(k)];
      ASSERT_EQ(kept[static_cast<size_t>(k)], expected) << "trial " << trial << " pixel " << k;
    }
  }
  EXPECT_GT(compared, 40);
  EXPECT_GT(several, 20);
}

}  // namespace
