#include "engine/data/phantom.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <set>
#include <thread>

#include "ops/core/parallel.h"

namespace emt {
namespace {

constexpr int kSamples = 48;

bool identical(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() && cv::norm(a, b, cv::NORM_INF) == 0;
}

class PhantomSetTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    PhantomConfig cfg;
    cfg.count = kSamples;
    samples_ = generate_phantom_set(cfg);
  }
  static void TearDownTestSuite() { samples_.clear(); }

  // Mean of a per-sample statistic over one class.
  template <typename Stat>
  static double class_mean(int label, Stat stat) {
    double sum = 0;
    int n = 0;
    for (const RawSample& s : samples_) {
      if (s.label != label) continue;
      sum += stat(s);
      ++n;
    }
    EXPECT_GE(n, 10) << "too few samples of class " << label;
    return sum / n;
  }

  static std::vector<RawSample> samples_;
};

std::vector<RawSample> PhantomSetTest::samples_;

double solidity(const cv::Mat& mask) {
  std::vector<std::vector<cv::Point>> contours;
  cv::findContours(mask, contours, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_NONE);
  EXPECT_EQ(contours.size(), 1u) << "the lesion should be one connected region";
  const auto& outline = *std::max_element(
      contours.begin(), contours.end(),
      [](const auto& a, const auto& b) { return cv::contourArea(a) < cv::contourArea(b); });
  std::vector<cv::Point> hull;
  cv::convexHull(outline, hull);
  return cv::contourArea(outline) / cv::contourArea(hull);
}

// Mean grey under the central half of the lesion's bounding box, divided by the mean grey in the
// same rows clear of the box on either side: < 1 is a shadow, > 1 an enhancement.
double posterior_ratio(const RawSample& s) {
  const cv::Rect box = cv::boundingRect(s.mask);
  const cv::Rect image_rect(0, 0, s.image.cols, s.image.rows);
  const int top = box.br().y + 3;
  const int rows = std::min(std::max(box.height / 2, 8), s.image.rows - top);
  const cv::Rect below = cv::Rect(box.x + box.width / 4, top, box.width / 2, rows) & image_rect;
  const int side = std::max(box.width / 2, 8);
  double beside_sum = 0, beside_area = 0;
  for (const cv::Rect& r :
       {cv::Rect(box.x - 3 - side, top, side, rows), cv::Rect(box.br().x + 3, top, side, rows)}) {
    const cv::Rect clipped = r & image_rect;
    beside_sum += cv::sum(s.image(clipped))[0];
    beside_area += clipped.area();
  }
  EXPECT_GT(below.area(), 0) << s.id;
  EXPECT_GT(beside_area, 0) << s.id;
  return cv::mean(s.image(below))[0] / (beside_sum / beside_area);
}

TEST(Phantom, SameSeedAndIndexGiveIdenticalBytes) {
  const PhantomConfig cfg;
  const RawSample a = generate_phantom(cfg, 7);
  generate_phantom(cfg, 3);
  const RawSample b = generate_phantom(cfg, 7);
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.label, b.label);
  EXPECT_TRUE(identical(a.image, b.image));
  EXPECT_TRUE(identical(a.mask, b.mask));
}

TEST(Phantom, OtherSeedOrIndexGivesOtherImage) {
  PhantomConfig cfg;
  const RawSample a = generate_phantom(cfg, 7);
  EXPECT_FALSE(identical(a.image, generate_phantom(cfg, 8).image));
  cfg.seed = 43;
  EXPECT_FALSE(identical(a.image, generate_phantom(cfg, 7).image));
}

// Runs the ranges on separate threads in reverse order, as no serial loop would.
void threaded_reverse_for(int64_t count, const RangeBody& body) {
  std::vector<std::thread> threads;
  for (int64_t begin = count - count % 5; begin >= 0; begin -= 5) {
    threads.emplace_back([&body, begin, count] { body(begin, std::min(begin + 5, count)); });
  }
  for (std::thread& t : threads) t.join();
}

TEST(Phantom, SetDoesNotDependOnThreading) {
  PhantomConfig cfg;
  cfg.count = 12;
  set_parallel_for(threaded_reverse_for);
  const std::vector<RawSample> set = generate_phantom_set(cfg);
  set_parallel_for(nullptr);
  ASSERT_EQ(set.size(), 12u);
  for (int i = 0; i < cfg.count; ++i) {
    const RawSample one = generate_phantom(cfg, i);
    EXPECT_EQ(set[i].id, one.id);
    EXPECT_TRUE(identical(set[i].image, one.image)) << i;
    EXPECT_TRUE(identical(set[i].mask, one.mask)) << i;
  }
}

TEST_F(PhantomSetTest, SizesVaryWithinBounds) {
  const PhantomConfig cfg;
  std::set<std::pair<int, int>> sizes;
  int wide = 0, tall = 0;
  for (const RawSample& s : samples_) {
    EXPECT_EQ(s.image.type(), CV_8UC1);
    EXPECT_GE(std::min(s.image.cols, s.image.rows), cfg.min_side);
    EXPECT_LE(std::max(s.image.cols, s.image.rows), cfg.max_side);
    sizes.insert({s.image.cols, s.image.rows});
    wide += s.image.cols > s.image.rows;
    tall += s.image.cols < s.image.rows;
  }
  EXPECT_GE(sizes.size(), samples_.size() * 9 / 10);
  EXPECT_GE(wide, kSamples / 4);
  EXPECT_GE(tall, kSamples / 4);
}

TEST_F(PhantomSetTest, MaskIsBinaryNonEmptyAndSized) {
  for (const RawSample& s : samples_) {
    ASSERT_EQ(s.mask.type(), CV_8UC1);
    ASSERT_EQ(s.mask.size(), s.image.size());
    const int lesion = cv::countNonZero(s.mask);
    EXPECT_EQ(lesion + cv::countNonZero(s.mask == 0), s.mask.total()) << s.id << " not 0/255";
    EXPECT_EQ(cv::countNonZero(s.mask == 255), lesion) << s.id;
    // Equivalent diameter against the shorter side, with room for spicules and rasterisation.
    const double diameter = 2 * std::sqrt(lesion / CV_PI);
    const double shorter = std::min(s.mask.cols, s.mask.rows);
    EXPECT_GT(diameter, 0.12 * shorter) << s.id;
    EXPECT_LT(diameter, 0.5 * shorter) << s.id;
  }
}

TEST_F(PhantomSetTest, LesionIsDarkerThanSurroundingTissue) {
  for (const RawSample& s : samples_) {
    cv::Mat near, far;
    cv::dilate(s.mask, near, cv::getStructuringElement(cv::MORPH_ELLIPSE, {5, 5}));
    cv::dilate(s.mask, far, cv::getStructuringElement(cv::MORPH_ELLIPSE, {21, 21}));
    const double inside = cv::mean(s.image, s.mask)[0];
    const double ring = cv::mean(s.image, far - near)[0];
    EXPECT_LT(inside, 0.7 * ring) << s.id;
  }
}

TEST_F(PhantomSetTest, MalignantOutlinesAreLessConvex) {
  const double benign = class_mean(0, [](const RawSample& s) { return solidity(s.mask); });
  const double malignant = class_mean(1, [](const RawSample& s) { return solidity(s.mask); });
  EXPECT_GT(benign, 0.95);
  EXPECT_LT(malignant, 0.85);
}

TEST_F(PhantomSetTest, MalignantLesionsCastPosteriorShadows) {
  EXPECT_LT(class_mean(1, posterior_ratio), 0.75);
  EXPECT_GT(class_mean(0, posterior_ratio), 0.95);
  for (const RawSample& s : samples_) {
    if (s.label == 1) {
      EXPECT_LT(posterior_ratio(s), 0.8) << s.id;
    }
  }
}

TEST_F(PhantomSetTest, LabelsMatchPhantomLabel) {
  const PhantomConfig cfg;
  for (int i = 0; i < kSamples; ++i) EXPECT_EQ(samples_[i].label, phantom_label(cfg, i));
}

TEST(Phantom, EveryPrefixHoldsTheMalignantFraction) {
  for (double fraction : {0.0, 0.1, 0.4, 0.5, 0.77, 1.0}) {
    for (uint64_t seed : {1, 42, 1234567}) {
      PhantomConfig cfg;
      cfg.seed = seed;
      cfg.malignant_fraction = fraction;
      int malignant = 0, worst = 0;
      for (int n = 1; n <= 5000; ++n) {
        malignant += phantom_label(cfg, n - 1);
        worst = std::max(worst, static_cast<int>(std::ceil(std::abs(malignant - fraction * n))));
      }
      EXPECT_LE(worst, 4) << "fraction " << fraction << " seed " << seed;
    }
  }
}

TEST(Phantom, InvalidConfigIsRejected) {
  PhantomConfig cfg;
  EXPECT_THROW(generate_phantom(cfg, -1), std::invalid_argument);
  cfg.min_side = 400;
  EXPECT_THROW(generate_phantom(cfg, 0), std::invalid_argument);
  cfg = {};
  cfg.malignant_fraction = 1.5;
  EXPECT_THROW(generate_phantom_set(cfg), std::invalid_argument);
}

TEST(Phantom, BusiLayoutHoldsImagesAndMasks) {
  PhantomConfig cfg;
  cfg.count = 6;
  const std::vector<RawSample> samples = generate_phantom_set(cfg);
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("emt_phantom_busi_" + std::to_string(::getpid()));
  write_phantom_busi_layout(samples, dir);
  for (const RawSample& s : samples) {
    const std::filesystem::path base = dir / (s.label == 1 ? "malignant" : "benign") / s.id;
    EXPECT_TRUE(identical(cv::imread(base.string() + ".png", cv::IMREAD_UNCHANGED), s.image));
    EXPECT_TRUE(identical(cv::imread(base.string() + "_mask.png", cv::IMREAD_UNCHANGED), s.mask));
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace emt
