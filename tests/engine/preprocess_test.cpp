#include "engine/data/preprocess.h"

#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>
#include <random>

namespace emt {
namespace {

cv::Mat random_grey(int rows, int cols) {
  cv::Mat m(rows, cols, CV_8UC1);
  cv::randu(m, 0, 256);
  return m;
}

// The first plane of a preprocessed tensor as a float image.
cv::Mat plane(const std::vector<float>& data, int size, int index = 0) {
  return cv::Mat(size, size, CV_32F,
                 const_cast<float*>(data.data()) + static_cast<ptrdiff_t>(index) * size * size);
}

TEST(PadToSquare, KeepsWideImageCentredAndUnchanged) {
  const cv::Mat src = random_grey(7, 12);
  const cv::Mat square = pad_to_square(src, 9);
  ASSERT_EQ(square.size(), cv::Size(12, 12));
  EXPECT_EQ(cv::norm(square(cv::Rect(0, 2, 12, 7)), src, cv::NORM_INF), 0);
  EXPECT_EQ(cv::countNonZero(square.rowRange(0, 2) != 9), 0);
  EXPECT_EQ(cv::countNonZero(square.rowRange(9, 12) != 9), 0);
}

TEST(PadToSquare, KeepsTallImageCentredAndUnchanged) {
  const cv::Mat src = random_grey(10, 5);
  const cv::Mat square = pad_to_square(src);
  ASSERT_EQ(square.size(), cv::Size(10, 10));
  EXPECT_EQ(cv::norm(square(cv::Rect(2, 0, 5, 10)), src, cv::NORM_INF), 0);
  EXPECT_EQ(cv::countNonZero(square.colRange(0, 2)), 0);
  EXPECT_EQ(cv::countNonZero(square.colRange(7, 10)), 0);
}

TEST(PadToSquare, SquareImageIsCopied) {
  const cv::Mat src = random_grey(6, 6);
  const cv::Mat square = pad_to_square(src);
  EXPECT_EQ(cv::norm(square, src, cv::NORM_INF), 0);
  EXPECT_NE(square.data, src.data);
}

TEST(Preprocess, ResizedMaskStaysBinary) {
  PhantomConfig cfg;
  cfg.malignant_fraction = 1;  // spiculated outlines have the most partial-coverage pixels
  const Sample s = preprocess(generate_phantom(cfg, 0), 96, 1, {});
  ASSERT_EQ(s.mask.size(), 96u * 96u);
  int lesion = 0;
  for (float v : s.mask) {
    ASSERT_TRUE(v == 0.0f || v == 1.0f) << v;
    lesion += v == 1.0f;
  }
  EXPECT_GT(lesion, 0);
}

TEST(Preprocess, OvalKeepsItsAspectRatio) {
  RawSample raw{"oval", cv::Mat(120, 200, CV_8UC1, cv::Scalar(128)),
                cv::Mat::zeros(120, 200, CV_8UC1), 0};
  cv::ellipse(raw.mask, cv::Point(100, 60), cv::Size(60, 30), 0, 0, 360, cv::Scalar(255), -1);
  const Sample s = preprocess(raw, 100, 1, {});
  const cv::Moments m = cv::moments(plane(s.mask, 100));
  EXPECT_NEAR(std::sqrt(m.mu20 / m.mu02), 2.0, 0.05);
}

// The image is resized by area and the mask by nearest neighbour; both must stay on the same
// pixel grid or the segmentation target is shifted against its input. Nearest neighbour can
// only pick whole pixels, so single offsets reach half a pixel, but they must not lean one way
// (plain INTER_NEAREST leans ~0.4 px towards the origin at these scales).
TEST(Preprocess, MaskStaysAlignedWithImage) {
  const Normalization identity{0.0f, 1.0f / 255};
  std::mt19937 rng(5);
  for (int side : {173, 250, 400}) {
    cv::Point2d offset_sum(0, 0);
    constexpr int kTrials = 30;
    for (int t = 0; t < kTrials; ++t) {
      RawSample raw{"box", cv::Mat(), cv::Mat::zeros(side, side, CV_8UC1), 0};
      const int w = 12 + static_cast<int>(rng() % (side / 3));
      const int h = 12 + static_cast<int>(rng() % (side / 3));
      raw.mask(cv::Rect(static_cast<int>(rng() % (side - w)), static_cast<int>(rng() % (side - h)),
                        w, h))
          .setTo(255);
      raw.image = raw.mask.clone();
      const Sample s = preprocess(raw, 100, 1, identity);
      const cv::Moments image = cv::moments(plane(s.image, 100));
      const cv::Moments mask = cv::moments(plane(s.mask, 100));
      const cv::Point2d offset(mask.m10 / mask.m00 - image.m10 / image.m00,
                               mask.m01 / mask.m00 - image.m01 / image.m00);
      EXPECT_LE(std::max(std::abs(offset.x), std::abs(offset.y)), 0.5 + 1e-6) << side;
      offset_sum += offset;
    }
    EXPECT_LT(std::abs(offset_sum.x / kTrials), 0.15) << side;
    EXPECT_LT(std::abs(offset_sum.y / kTrials), 0.15) << side;
  }
}

TEST(Preprocess, ReplicatesGreyIntoChannels) {
  const RawSample raw{"c", random_grey(30, 40), cv::Mat::zeros(30, 40, CV_8UC1), 1};
  const Sample s = preprocess(raw, 32, 3, {});
  ASSERT_EQ(s.image.size(), 3u * 32 * 32);
  EXPECT_EQ(s.id, "c");
  EXPECT_EQ(s.label, 1);
  for (int c = 1; c < 3; ++c)
    EXPECT_EQ(cv::norm(plane(s.image, 32, c), plane(s.image, 32), cv::NORM_INF), 0);
}

TEST(Preprocess, NormalisesByHand) {
  // Already square and at input size, so no resampling touches the values.
  RawSample raw{"n", cv::Mat(2, 2, CV_8UC1), cv::Mat::zeros(2, 2, CV_8UC1), 0};
  raw.image.at<uint8_t>(0, 0) = 0;
  raw.image.at<uint8_t>(0, 1) = 255;
  raw.image.at<uint8_t>(1, 0) = 51;
  raw.image.at<uint8_t>(1, 1) = 102;
  const Sample s = preprocess(raw, 2, 1, {});
  EXPECT_FLOAT_EQ(s.image[0], -2.0f);  // (0 - 0.5) / 0.25
  EXPECT_FLOAT_EQ(s.image[1], 2.0f);   // (1 - 0.5) / 0.25
  EXPECT_FLOAT_EQ(s.image[2], -1.2f);  // (0.2 - 0.5) / 0.25
  EXPECT_FLOAT_EQ(s.image[3], -0.4f);  // (0.4 - 0.5) / 0.25
  const Sample custom = preprocess(raw, 2, 1, {0.4f, 0.2f});
  EXPECT_NEAR(custom.image[3], 0.0f, 1e-6f);
  EXPECT_FLOAT_EQ(custom.image[1], 3.0f);  // (1 - 0.4) / 0.2
}

TEST(Preprocess, RejectsWhatItCannotHandle) {
  const cv::Mat grey = random_grey(8, 8), mask = cv::Mat::zeros(8, 8, CV_8UC1);
  EXPECT_THROW(preprocess({"rgb", cv::Mat(8, 8, CV_8UC3), mask, 0}, 4, 1, {}),
               std::invalid_argument);
  EXPECT_THROW(preprocess({"m", grey, cv::Mat::zeros(8, 9, CV_8UC1), 0}, 4, 1, {}),
               std::invalid_argument);
  EXPECT_THROW(preprocess({"s", grey, mask, 0}, 0, 1, {}), std::invalid_argument);
  EXPECT_THROW(preprocess({"c", grey, mask, 0}, 4, 0, {}), std::invalid_argument);
}

}  // namespace
}  // namespace emt
