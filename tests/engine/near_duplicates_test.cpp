#include "engine/data/near_duplicates.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <numeric>
#include <opencv2/imgproc.hpp>
#include <set>
#include <string>

#include "engine/data/phantom.h"
#include "engine/data/readers.h"
#include "tests/skip_or_fail.h"

namespace emt {
namespace {

namespace fs = std::filesystem;

cv::Mat phantom(int index) {
  PhantomConfig cfg;
  return generate_phantom(cfg, index).image;
}

cv::Mat shifted(const cv::Mat& src, int dx, int dy) {
  const cv::Mat m = (cv::Mat_<double>(2, 3) << 1, 0, dx, 0, 1, dy);
  cv::Mat out;
  cv::warpAffine(src, out, m, src.size(), cv::INTER_NEAREST, cv::BORDER_REPLICATE);
  return out;
}

cv::Mat noisy(const cv::Mat& src, double sigma, uint64_t seed) {
  cv::RNG rng(seed);
  cv::Mat noise(src.size(), CV_16SC1);
  rng.fill(noise, cv::RNG::NORMAL, 0, sigma);
  cv::Mat out;
  cv::add(src, noise, out, cv::noArray(), CV_8U);
  return out;
}

double dot(const std::vector<float>& a, const std::vector<float>& b) {
  return std::inner_product(a.begin(), a.end(), b.begin(), 0.0);
}

TEST(NearDupSignature, IsZeroMeanUnitNormAtTheRequestedSide) {
  const std::vector<float> s = image_signature(phantom(0), 32);
  ASSERT_EQ(s.size(), 32u * 32u);
  EXPECT_NEAR(std::accumulate(s.begin(), s.end(), 0.0), 0.0, 1e-4);
  EXPECT_NEAR(dot(s, s), 1.0, 1e-5);
  // Upsampling a small image works too.
  EXPECT_NEAR(dot(image_signature(phantom(1)(cv::Rect(0, 0, 20, 30))),
                  image_signature(phantom(1)(cv::Rect(0, 0, 20, 30)))),
              1.0, 1e-5);
}

TEST(NearDupSignature, FlatImageCorrelatesWithNothing) {
  const std::vector<float> s = image_signature(cv::Mat(50, 70, CV_8UC1, cv::Scalar(93)));
  EXPECT_TRUE(std::all_of(s.begin(), s.end(), [](float v) { return v == 0.0f; }));
  const std::vector<cv::Mat> images = {cv::Mat(50, 70, CV_8UC1, cv::Scalar(93)),
                                       cv::Mat(50, 70, CV_8UC1, cv::Scalar(93))};
  EXPECT_EQ(find_near_duplicates(images).merged_count, 0);
}

TEST(NearDupSignature, RejectsNonGreyInput) {
  EXPECT_THROW(image_signature(cv::Mat()), std::invalid_argument);
  EXPECT_THROW(image_signature(cv::Mat(8, 8, CV_8UC3)), std::invalid_argument);
  EXPECT_THROW(image_signature(cv::Mat(8, 8, CV_8UC1), 0), std::invalid_argument);
}

TEST(NearDupGroups, AlteredCopiesJoinTheirOriginalAndNothingElse) {
  const cv::Mat a = phantom(0), b = phantom(1), c = phantom(2);
  cv::Mat a_resized, b_cropped;
  cv::resize(a, a_resized, cv::Size(), 0.83, 0.91, cv::INTER_LINEAR);
  b_cropped = b(cv::Rect(3, 2, b.cols - 6, b.rows - 5)).clone();
  // Shifts stay at one pixel: the phantom's speckle is a few pixels across, so at 48x48 a
  // 2-pixel shift already drops the correlation to about 0.87, like an independent re-scan.
  const std::vector<cv::Mat> images = {
      a,                               // 0
      b,                               // 1
      shifted(a, 1, -1),               // 2
      c,                               // 3
      noisy(b, 12, 7),                 // 4
      phantom(3),                      // 5
      a_resized,                       // 6
      b_cropped,                       // 7
      phantom(4),                      // 8
      noisy(shifted(c, -1, 1), 8, 9),  // 9
  };
  const NearDuplicateGroups g = find_near_duplicates(images);
  ASSERT_EQ(g.group.size(), images.size());
  EXPECT_EQ(g.group, (std::vector<int>{0, 1, 0, 2, 1, 3, 0, 1, 4, 2}));
  EXPECT_EQ(g.group_count, 5);
  EXPECT_EQ(g.merged_count, 3);
  for (const NearDuplicatePair& p : g.pairs) {
    EXPECT_LT(p.a, p.b);
    EXPECT_GT(p.correlation, 0.95);
    EXPECT_EQ(g.group[static_cast<size_t>(p.a)], g.group[static_cast<size_t>(p.b)]);
  }
  // Unrelated phantoms share layered tissue, yet stay clear of the threshold.
  double worst = -1;
  for (int i : {0, 1, 3, 5, 8}) {
    for (int j : {0, 1, 3, 5, 8}) {
      if (i < j)
        worst = std::max(worst, dot(image_signature(images[static_cast<size_t>(i)]),
                                    image_signature(images[static_cast<size_t>(j)])));
    }
  }
  EXPECT_LT(worst, 0.9);
}

TEST(NearDupGroups, ChainsJoinTransitivelyAndThresholdIsStrict) {
  // Each image is the previous one shifted a little: neighbours correlate more than ends do.
  const cv::Mat base = phantom(5);
  std::vector<cv::Mat> chain;
  for (int i = 0; i < 4; ++i) chain.push_back(shifted(base, 4 * i, 0));
  const double ends = dot(image_signature(chain.front()), image_signature(chain.back()));
  const double next = dot(image_signature(chain[0]), image_signature(chain[1]));
  ASSERT_LT(ends, next);
  NearDuplicateOptions opts;
  opts.threshold = (ends + next) / 2;
  const NearDuplicateGroups g = find_near_duplicates(chain, opts);
  EXPECT_EQ(g.group, (std::vector<int>{0, 0, 0, 0}));
  EXPECT_EQ(g.merged_count, 1);
  EXPECT_LT(g.pairs.size(), 6u);  // the ends were joined through the chain, not directly

  // A pair must exceed the threshold: at exactly its correlation it stays apart.
  const std::vector<cv::Mat> pair = {base, noisy(base, 10, 3)};
  opts.threshold = -1;
  const NearDuplicateGroups all = find_near_duplicates(pair, opts);
  ASSERT_EQ(all.pairs.size(), 1u);
  opts.threshold = all.pairs[0].correlation;
  EXPECT_EQ(find_near_duplicates(pair, opts).merged_count, 0);
  EXPECT_EQ(find_near_duplicates(std::vector<cv::Mat>{}).group_count, 0);
}

// ---------------------------------------------------------------------------------------------
// BUSI

fs::path shared_dir() {
  if (const char* s = std::getenv("EMT_SHARED_DIR"); s && *s) return s;
  const char* source = std::getenv("EMT_SOURCE_DIR");
  return (source && *source ? fs::path(source) : fs::current_path()) / ".." / "shared";
}

// near_duplicates.csv: corr48,image_a,image_b,... with quoted "class/name.png" paths.
std::vector<std::pair<std::string, std::string>> reference_pairs(const fs::path& csv) {
  std::ifstream in(csv);
  std::string line;
  std::getline(in, line);
  std::vector<std::pair<std::string, std::string>> pairs;
  const auto id = [](const std::string& path) { return path.substr(0, path.rfind('.')); };
  while (std::getline(in, line)) {
    std::vector<std::string> quoted;
    for (size_t open = line.find('"'); open != std::string::npos;) {
      const size_t close = line.find('"', open + 1);
      quoted.push_back(line.substr(open + 1, close - open - 1));
      open = line.find('"', close + 1);
    }
    if (quoted.size() >= 2) pairs.emplace_back(id(quoted[0]), id(quoted[1]));
  }
  return pairs;
}

TEST(NearDupBusi, FindsTheReferencePairs) {
  const fs::path busi = shared_dir() / "data" / "BUSI";
  if (!fs::exists(busi / "near_duplicates.csv")) {
    EMT_SKIP_MISSING(busi << " not found (set EMT_SHARED_DIR)");
  }
  ReadOptions opts;
  opts.include_normal = true;  // the reference list spans all three classes
  ReadReport report;
  const std::vector<RawSample> samples = read_busi_folder(busi, opts, report);
  EXPECT_TRUE(report.issues.empty());
  ASSERT_EQ(samples.size(), 780u);
  std::map<std::string, int> index;
  std::vector<cv::Mat> images;
  for (const RawSample& s : samples) {
    index[s.id] = static_cast<int>(images.size());
    images.push_back(s.image);
  }
  const NearDuplicateGroups g = find_near_duplicates(images);
  std::set<std::pair<int, int>> found;
  for (const NearDuplicatePair& p : g.pairs) found.emplace(p.a, p.b);

  const auto reference = reference_pairs(busi / "near_duplicates.csv");
  ASSERT_EQ(reference.size(), 223u);
  int direct = 0, grouped = 0;
  for (const auto& [a, b] : reference) {
    ASSERT_TRUE(index.count(a) && index.count(b)) << a << " " << b;
    const int i = std::min(index[a], index[b]), j = std::max(index[a], index[b]);
    direct += found.count({i, j}) ? 1 : 0;
    grouped += g.group[static_cast<size_t>(i)] == g.group[static_cast<size_t>(j)] ? 1 : 0;
  }
  std::cout << "[ BUSI     ] " << direct << " / " << reference.size()
            << " reference pairs found directly, " << grouped << " grouped; " << g.pairs.size()
            << " pairs above 0.95; " << g.merged_count << " groups of 2+ images, " << g.group_count
            << " groups over " << images.size() << " images\n";
  RecordProperty("pairs_found", direct);
  RecordProperty("groups_formed", g.merged_count);
  EXPECT_GE(direct, 0.9 * static_cast<double>(reference.size()));
  EXPECT_GE(grouped, direct);
  // The pixel-identical pair crosses classes, which is why grouping must precede splitting.
  EXPECT_EQ(g.group[static_cast<size_t>(index["benign/benign (433)"])],
            g.group[static_cast<size_t>(index["malignant/malignant (145)"])]);
}

}  // namespace
}  // namespace emt
