// The phone's OpenCV-free image geometry (mobile/preprocess.h) against the engine's OpenCV one
// (engine/data/preprocess.h) on random images of many shapes: shrinking by non-integer and
// integer factors, enlarging, the same size; wide, tall and square; rows with padding bytes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "engine/data/preprocess.h"
#include "mobile/preprocess.h"

namespace {

struct Shape {
  int width, height, input_size;
};

std::string describe(const Shape& s) {
  return std::to_string(s.width) + "x" + std::to_string(s.height) + "->" +
         std::to_string(s.input_size);
}

// Uniform noise, or (binary) only 0 and 255, whose averages land on .5 often and so test the
// rounding rules.
cv::Mat random_image(const Shape& s, std::mt19937& rng, bool binary) {
  cv::Mat image(s.height, s.width, CV_8UC1);
  std::uniform_int_distribution<int> level(0, 255), bit(0, 1);
  for (int y = 0; y < s.height; ++y)
    for (int x = 0; x < s.width; ++x)
      image.at<uint8_t>(y, x) = static_cast<uint8_t>(binary ? 255 * bit(rng) : level(rng));
  return image;
}

// Shapes covering each path of cv::resize INTER_AREA from the padded square's side to the input.
const std::vector<Shape> kShapes = {
    // shrinking by non-integer factors
    {300, 200, 64},
    {200, 301, 64},
    {97, 97, 32},
    {250, 130, 224},
    {333, 480, 224},
    {1000, 700, 224},
    {65, 40, 32},
    {33, 1, 32},
    {47, 100, 33},
    // shrinking by integer factors: 2 (OpenCV's SIMD 2x2 box), 3, 4, 5
    {128, 100, 64},
    {96, 60, 32},
    {256, 256, 64},
    {448, 300, 224},
    {90, 160, 32},
    // enlarging
    {20, 13, 32},
    {13, 20, 64},
    {50, 50, 64},
    {100, 150, 224},
    {7, 3, 32},
    {1, 1, 32},
    {16, 9, 64},
    {200, 223, 224},
    // the same size: a copy
    {64, 40, 64},
    {40, 64, 64},
};

struct Agreement {
  int64_t total = 0, exact = 0, within_one_level = 0;
  std::string worst;  // the first value off by more than one level
};

void compare_preprocess(const Shape& s, const cv::Mat& image, int channels,
                        const emt::Normalization& norm, Agreement& a) {
  // A clone for the engine: cv::copyMakeBorder (in pad_to_square) pads an ROI with the pixels
  // around it in its parent image, not with zeros.
  const emt::Sample expected = emt::preprocess(
      emt::RawSample{"random", image.clone(), cv::Mat::zeros(image.size(), CV_8UC1), 0},
      s.input_size, channels, norm);
  std::vector<float> got(expected.image.size(), -1e9f);
  const emt::mobile::GreyImage grey{image.ptr<uint8_t>(), image.cols, image.rows,
                                    static_cast<int64_t>(image.step)};
  emt::mobile::preprocess_grey(grey, s.input_size, channels, norm.mean, norm.std, got.data());
  const float level = 1.0f / 255.0f / norm.std;
  for (size_t i = 0; i < got.size(); ++i) {
    const float diff = std::abs(got[i] - expected.image[i]);
    ++a.total;
    a.exact += diff == 0.0f;
    if (diff <= level * 1.001f) {
      ++a.within_one_level;
    } else if (a.worst.empty()) {
      std::ostringstream os;
      os << "preprocess " << describe(s) << " c" << channels << " index " << i << ": mobile "
         << got[i] << " opencv " << expected.image[i];
      a.worst = os.str();
    }
  }
}

std::string summary(const Agreement& a) {
  std::ostringstream os;
  os << a.exact << "/" << a.total << " exact (" << 100.0 * a.exact / std::max<int64_t>(a.total, 1)
     << "%), " << a.total - a.within_one_level << " off by more than one grey level"
     << (a.worst.empty() ? "" : "; first: " + a.worst);
  return os.str();
}

TEST(PreprocessOpenCv, MatchesEnginePreprocess) {
  std::mt19937 rng(20240611);
  const emt::Normalization norm{0.45f, 0.22f};
  Agreement all;
  // And random ones (seeded): sides up to 700 against the usual and random input sizes.
  std::vector<Shape> shapes = kShapes;
  std::uniform_int_distribution<int> side(1, 700), small_side(1, 80), input(1, 300);
  for (int i = 0; i < 60; ++i) {
    const int n = i % 3 == 0 ? input(rng) : (i % 3 == 1 ? 32 : 224);
    shapes.push_back(i % 5 == 0 ? Shape{small_side(rng), small_side(rng), n}
                                : Shape{side(rng), side(rng), n});
  }
  for (const Shape& s : shapes) {
    for (bool binary : {false, true}) {
      Agreement one;
      compare_preprocess(s, random_image(s, rng, binary), binary ? 1 : 3, norm, one);
      // Every shape on its own: a wrong path for one shape must not hide among the others.
      EXPECT_EQ(one.within_one_level, one.total) << describe(s) << ": " << summary(one);
      EXPECT_GE(one.exact, one.total * 995 / 1000) << describe(s) << ": " << summary(one);
      all.total += one.total;
      all.exact += one.exact;
      all.within_one_level += one.within_one_level;
      if (all.worst.empty()) all.worst = one.worst;
    }
  }
  std::cout << "[ preprocess ] mobile vs OpenCV: " << summary(all) << "\n";
  EXPECT_GE(all.exact, all.total * 995 / 1000) << summary(all);
}

// A camera frame's plane: rows longer than the image (a cv::Mat ROI has the same layout).
TEST(PreprocessOpenCv, RowStrideLongerThanWidth) {
  std::mt19937 rng(7);
  const Shape s{70, 45, 32};
  const cv::Mat frame = random_image({s.width + 13, s.height + 4, 0}, rng, false);
  const cv::Mat roi = frame(cv::Rect(5, 2, s.width, s.height));
  ASSERT_GT(roi.step, static_cast<size_t>(roi.cols));
  Agreement a;
  compare_preprocess(s, roi, 1, emt::Normalization{}, a);
  EXPECT_EQ(a.exact, a.total) << summary(a);
}

TEST(PreprocessOpenCv, RestoreMaskMatchesEngine) {
  std::mt19937 rng(99);
  std::uniform_real_distribution<float> prob(0.0f, 1.0f);
  struct Case {
    int input_size, width, height;
  };
  // Enlarging (the usual case), the same size, exactly half (cv::resize then averages 2x2
  // boxes), other shrinking, and thin images.
  const std::vector<Case> cases = {
      {64, 300, 200}, {64, 200, 301}, {224, 500, 375}, {32, 97, 97}, {64, 64, 40},
      {64, 32, 20},   {224, 112, 90}, {64, 50, 50},    {64, 13, 20}, {32, 7, 3},
      {32, 1, 40},    {224, 1000, 1}, {32, 33, 31},    {32, 16, 16}, {2, 5, 9},
  };
  std::vector<Case> all_cases = cases;
  std::uniform_int_distribution<int> side(1, 700), input(1, 300);
  for (int i = 0; i < 100; ++i) all_cases.push_back({input(rng), side(rng), side(rng)});
  int64_t total = 0, same = 0;
  for (const Case& c : all_cases) {
    std::vector<float> probs(static_cast<size_t>(c.input_size) * c.input_size);
    for (float& p : probs) p = prob(rng);
    const float threshold = 0.5f;
    const cv::Mat expected =
        emt::restore_mask(probs, c.input_size, cv::Size(c.width, c.height), threshold);
    std::vector<uint8_t> got(static_cast<size_t>(c.width) * c.height, 7);
    emt::mobile::restore_mask(probs.data(), c.input_size, c.width, c.height, threshold, got.data());
    int64_t one_same = 0;
    for (int y = 0; y < c.height; ++y)
      for (int x = 0; x < c.width; ++x)
        one_same += got[static_cast<size_t>(y) * c.width + x] == expected.at<uint8_t>(y, x);
    const int64_t one_total = int64_t{c.width} * c.height;
    EXPECT_GE(one_same * 1000, one_total * 999)
        << "restore_mask " << c.input_size << "->" << c.width << "x" << c.height << ": " << one_same
        << "/" << one_total << " pixels identical";
    total += one_total;
    same += one_same;
  }
  std::cout << "[ restore_mask ] mobile vs OpenCV: " << same << "/" << total
            << " pixels identical\n";
  EXPECT_GE(same * 1000, total * 999) << same << "/" << total;
}

}  // namespace
