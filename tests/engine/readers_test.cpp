#include "engine/data/readers.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <vector>

#include "tests/engine/image_files.h"
#include "tests/engine/temp_dir_test.h"

namespace emt {
namespace {

namespace fs = std::filesystem;

// Every value 0..255 appears, in a pattern that survives no accidental transposition.
cv::Mat grey_pattern(int rows = 24, int cols = 40) {
  cv::Mat m(rows, cols, CV_8UC1);
  for (int y = 0; y < rows; ++y) {
    for (int x = 0; x < cols; ++x)
      m.at<uint8_t>(y, x) = static_cast<uint8_t>((x * 7 + y * 31) % 256);
  }
  return m;
}

cv::Mat rect_mask(cv::Size size, cv::Rect r, int value = 255) {
  cv::Mat m = cv::Mat::zeros(size, CV_8UC1);
  m(r).setTo(value);
  return m;
}

double max_diff(const cv::Mat& a, const cv::Mat& b) { return cv::norm(a, b, cv::NORM_INF); }

std::string encode(const std::string& ext, const cv::Mat& image) {
  std::vector<uchar> bytes;
  EXPECT_TRUE(cv::imencode(ext, image, bytes));
  return std::string(bytes.begin(), bytes.end());
}

class ReaderTest : public test::TempDirTest {
 protected:
  fs::path image(const std::string& name, const cv::Mat& m) {
    return test::write_image(dir_, name, m);
  }

  // A BUSI-style sample: <cls>/<name>.png with <name>_mask.png.
  void sample(const std::string& cls, const std::string& name, const cv::Mat& img,
              const cv::Mat& mask) {
    image(cls + "/" + name + ".png", img);
    image(cls + "/" + name + "_mask.png", mask);
  }

  std::string path_of(const std::string& name) const { return (dir_ / name).string(); }
};

std::vector<std::string> ids(const std::vector<RawSample>& samples) {
  std::vector<std::string> out;
  for (const RawSample& s : samples) out.push_back(s.id);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Decoding

TEST_F(ReaderTest, EveryFormatDecodesToTheSameGrey) {
  const cv::Mat grey = grey_pattern();
  cv::Mat bgr, bgra, colour16;
  cv::cvtColor(grey, bgr, cv::COLOR_GRAY2BGR);
  cv::cvtColor(grey, bgra, cv::COLOR_GRAY2BGRA);
  // Alpha must be ignored, however transparent.
  for (int y = 0; y < bgra.rows; ++y) {
    for (int x = 0; x < bgra.cols; ++x) bgra.at<cv::Vec4b>(y, x)[3] = static_cast<uint8_t>(y * 10);
  }
  cv::Mat grey16, bgr16;
  grey.convertTo(grey16, CV_16U, 257);
  bgr.convertTo(bgr16, CV_16U, 257);

  const std::vector<std::pair<std::string, cv::Mat>> lossless = {
      {"grey.png", grey},   {"rgb.png", bgr},   {"rgba.png", bgra}, {"grey16.png", grey16},
      {"rgb16.png", bgr16}, {"grey.bmp", grey}, {"rgb.bmp", bgr}};
  for (const auto& [name, m] : lossless) {
    const cv::Mat decoded = read_grey_image(image(name, m), {});
    ASSERT_EQ(decoded.type(), CV_8UC1) << name;
    ASSERT_EQ(decoded.size(), grey.size()) << name;
    EXPECT_EQ(max_diff(decoded, grey), 0) << name;
  }
}

TEST_F(ReaderTest, ColourConvertsLikeOpenCvGreyAt8And16Bits) {
  cv::Mat bgr(16, 16, CV_8UC3);
  cv::randu(bgr, 0, 256);
  cv::Mat expected, bgr16;
  cv::cvtColor(bgr, expected, cv::COLOR_BGR2GRAY);
  bgr.convertTo(bgr16, CV_16U, 257);
  EXPECT_EQ(max_diff(read_grey_image(image("c8.png", bgr), {}), expected), 0);
  EXPECT_EQ(max_diff(read_grey_image(image("c16.png", bgr16), {}), expected), 0);
}

TEST_F(ReaderTest, SixteenBitScalesBy257) {
  cv::Mat v16(1, 4, CV_16UC1);
  v16.at<uint16_t>(0) = 0;
  v16.at<uint16_t>(1) = 257 * 100 + 129;  // 100.50..., rounds up
  v16.at<uint16_t>(2) = 257 * 100 + 128;  // 100.49..., rounds down
  v16.at<uint16_t>(3) = 65535;
  const cv::Mat d = read_grey_image(image("v.png", v16), {});
  EXPECT_EQ(d.at<uint8_t>(0), 0);
  EXPECT_EQ(d.at<uint8_t>(1), 101);
  EXPECT_EQ(d.at<uint8_t>(2), 100);
  EXPECT_EQ(d.at<uint8_t>(3), 255);
}

TEST_F(ReaderTest, JpegDecodesCloseToTheOriginal) {
  cv::Mat smooth(64, 64, CV_8UC1);
  for (int y = 0; y < 64; ++y) {
    for (int x = 0; x < 64; ++x) smooth.at<uint8_t>(y, x) = static_cast<uint8_t>(2 * x + y);
  }
  cv::Mat bgr;
  cv::cvtColor(smooth, bgr, cv::COLOR_GRAY2BGR);
  for (const auto& [name, m] : {std::pair{"g.jpg", smooth}, {"c.jpeg", bgr}}) {
    const fs::path path = dir_ / name;
    ASSERT_TRUE(cv::imwrite(path.string(), m, {cv::IMWRITE_JPEG_QUALITY, 95}));
    const cv::Mat d = read_grey_image(path, {});
    ASSERT_EQ(d.type(), CV_8UC1);
    EXPECT_LE(max_diff(d, smooth), 6) << name;
  }
}

TEST_F(ReaderTest, AnyNonZeroMaskPixelIsLesion) {
  cv::Mat m = cv::Mat::zeros(8, 8, CV_8UC1);
  m.at<uint8_t>(1, 1) = 1;
  m.at<uint8_t>(2, 2) = 128;
  m.at<uint8_t>(3, 3) = 255;
  cv::Mat expected = cv::Mat::zeros(8, 8, CV_8UC1);
  for (int i : {1, 2, 3}) expected.at<uint8_t>(i, i) = 255;
  EXPECT_EQ(max_diff(read_mask(image("m.png", m), {}), expected), 0);

  // Pure blue at 8 bits greys to 29; what matters is that it is not 0.
  cv::Mat colour = cv::Mat::zeros(8, 8, CV_8UC3);
  colour.at<cv::Vec3b>(4, 5) = {255, 0, 0};
  expected = cv::Mat::zeros(8, 8, CV_8UC1);
  expected.at<uint8_t>(4, 5) = 255;
  EXPECT_EQ(max_diff(read_mask(image("c.png", colour), {}), expected), 0);
}

TEST_F(ReaderTest, BrokenFilesThrowWithPathAndReason) {
  const std::string png = encode(".png", grey_pattern(64, 64));
  const std::string jpg = encode(".jpg", grey_pattern(64, 64));
  const fs::path truncated_png = write("t.png", png.substr(0, png.size() / 2));
  const fs::path truncated_jpg = write("t.jpg", jpg.substr(0, jpg.size() * 2 / 3));
  const fs::path empty = write("e.png", "");
  const fs::path text = write("x.png", "not an image");
  for (const auto& [path, reason] : {std::pair{truncated_png, "not a decodable image"},
                                     {truncated_jpg, "truncated JPEG"},
                                     {empty, "empty file"},
                                     {text, "not a decodable image"},
                                     {dir_ / "absent.png", "does not exist"}}) {
    try {
      read_grey_image(path, {});
      ADD_FAILURE() << path << " decoded";
    } catch (const std::runtime_error& e) {
      EXPECT_EQ(std::string(e.what()).rfind(path.string() + ": ", 0), 0u) << e.what();
      EXPECT_NE(std::string(e.what()).find(reason), std::string::npos) << e.what();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// BUSI layout

TEST_F(ReaderTest, BusiMergesExtraMasksAndLeavesOutNormal) {
  const cv::Size size(40, 24);
  const cv::Mat img = grey_pattern();
  image("benign/b (1).png", img);
  image("benign/b (1)_mask.png", rect_mask(size, {2, 2, 5, 5}));
  image("benign/b (1)_mask_1.png", rect_mask(size, {20, 10, 6, 4}, 1));
  image("benign/b (1)_mask_2.png", rect_mask(size, {4, 4, 10, 3}));
  sample("benign", "b (10)", img, rect_mask(size, {0, 0, 3, 3}));
  sample("benign", "b (2)", img, rect_mask(size, {0, 0, 3, 3}));
  sample("malignant", "m (1)", img, rect_mask(size, {9, 9, 3, 3}));
  sample("normal", "n (1)", img, cv::Mat::zeros(size, CV_8UC1));
  // Not images of the layout: ignored.
  write("manifest.csv", "a,b\n1,2\n");
  write("benign/notes.txt", "hello");
  write("benign/stats.csv", "x\n");
  fs::create_directories(dir_ / "extra");
  image("extra/z.png", img);

  ReadReport report;
  const std::vector<RawSample> s = read_busi_folder(dir_, {}, report);
  EXPECT_TRUE(report.issues.empty());
  EXPECT_EQ(report.excluded_normal, 1);
  EXPECT_EQ(ids(s), (std::vector<std::string>{"benign/b (1)", "benign/b (2)", "benign/b (10)",
                                              "malignant/m (1)"}));
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[0].label, 0);
  EXPECT_EQ(s[3].label, 1);
  EXPECT_EQ(max_diff(s[0].image, img), 0);
  cv::Mat expected = rect_mask(size, {2, 2, 5, 5});
  expected(cv::Rect(20, 10, 6, 4)).setTo(255);
  expected(cv::Rect(4, 4, 10, 3)).setTo(255);
  ASSERT_EQ(s[0].mask.type(), CV_8UC1);
  EXPECT_EQ(max_diff(s[0].mask, expected), 0);

  ReadOptions with_normal;
  with_normal.include_normal = true;
  ReadReport report2;
  const std::vector<RawSample> all = read_busi_folder(dir_, with_normal, report2);
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(all.back().id, "normal/n (1)");
  EXPECT_EQ(all.back().label, 0);
  EXPECT_EQ(cv::countNonZero(all.back().mask), 0);
  EXPECT_EQ(report2.excluded_normal, 0);
}

TEST_F(ReaderTest, BusiBadDataIsReportedOnceAndSkipped) {
  const cv::Size size(40, 24);
  const cv::Mat img = grey_pattern();
  const cv::Mat mask = rect_mask(size, {1, 1, 4, 4});
  const std::string png = encode(".png", img);
  sample("benign", "a (1)", img, mask);
  write("benign/a (2).png", png.substr(0, png.size() / 2));  // truncated
  image("benign/a (2)_mask.png", mask);
  write("benign/a (3).png", "");  // empty
  image("benign/a (3)_mask.png", mask);
  sample("benign", "a (4)", img, rect_mask({20, 12}, {1, 1, 4, 4}));  // size mismatch
  image("benign/a (5)_mask_1.png", mask);                             // valid, then wrong size
  image("benign/a (5).png", img);
  image("benign/a (5)_mask.png", mask);
  image("benign/a (5)_mask_2.png", rect_mask({41, 24}, {1, 1, 4, 4}));
  image("benign/a (6).png", img);        // no mask
  image("benign/a (7)_mask.png", mask);  // no image
  sample("malignant", "z (1)", img, mask);

  ReadReport report;
  const std::vector<RawSample> s = read_busi_folder(dir_, {}, report);
  EXPECT_EQ(ids(s), (std::vector<std::string>{"benign/a (1)", "malignant/z (1)"}));
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"benign/a (2).png", "not a decodable image"},
      {"benign/a (3).png", "empty file"},
      {"benign/a (4)_mask.png", "mask is 20x12 but the image is 40x24"},
      {"benign/a (5)_mask_2.png", "mask is 41x24 but the image is 40x24"},
      {"benign/a (6).png", "no mask"},
      {"benign/a (7)_mask.png", "mask without an image"}};
  ASSERT_EQ(report.issues.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(report.issues[i].path, path_of(expected[i].first));
    EXPECT_NE(report.issues[i].reason.find(expected[i].second), std::string::npos)
        << report.issues[i].reason;
  }

  ReadOptions strict;
  strict.strict = true;
  ReadReport unused;
  try {
    read_busi_folder(dir_, strict, unused);
    ADD_FAILURE() << "strict read accepted bad data";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()),
              path_of("benign/a (2).png") + ": " + report.issues.front().reason);
  }
}

TEST_F(ReaderTest, BusiFolderMustHoldAClassFolder) {
  ReadReport report;
  image("images/a.png", grey_pattern());
  EXPECT_THROW(read_busi_folder(dir_, {}, report), std::runtime_error);
  EXPECT_THROW(read_busi_folder(dir_ / "absent", {}, report), std::runtime_error);
}

// ---------------------------------------------------------------------------------------------
// CSV manifest

TEST_F(ReaderTest, ManifestReadsQuotedFieldsRelativeToItsFolder) {
  const cv::Size size(40, 24);
  const cv::Mat img = grey_pattern();
  image("data/imgs/a, first.png", img);
  image("data/imgs/a, first_mask.png", rect_mask(size, {1, 1, 4, 4}));
  image("data/b.bmp", img);
  image("data/masks/b.png", rect_mask(size, {5, 5, 4, 4}));
  image("data/c.png", img);
  image("data/c_mask.png", rect_mask(size, {9, 9, 4, 4}));
  image("abs.png", img);
  image("abs_mask.png", rect_mask(size, {2, 2, 2, 2}));
  // Columns in another order, CRLF endings, a blank line, padding around unquoted fields, a
  // quoted field spanning a line break and doubled quotes.
  const fs::path manifest =
      write("data/list.csv",
            "label, image ,mask,group\r\n"
            "benign,\"imgs/a, first.png\",\"imgs/a, first_mask.png\",\"patient \"\"7\"\"\"\r\n"
            "\r\n"
            " 1 , b.bmp , masks/b.png ,\r\n"
            "Malignant,c.png,c_mask.png,\"two\nlines\"\r\n"
            "0,\"" +
                (dir_ / "abs.png").string() + "\",../abs_mask.png,p\r\n");
  ReadReport report;
  const std::vector<LabeledImage> s = read_csv_manifest(manifest, {}, report);
  for (const ReadIssue& i : report.issues) ADD_FAILURE() << i.path << ": " << i.reason;
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[0].sample.id, "imgs/a, first.png");
  EXPECT_EQ(s[0].sample.label, 0);
  EXPECT_EQ(s[0].group, "patient \"7\"");
  EXPECT_EQ(s[0].path, (dir_ / "data/imgs/a, first.png").string());
  EXPECT_EQ(cv::countNonZero(s[0].sample.mask), 16);
  EXPECT_EQ(max_diff(s[0].sample.image, img), 0);
  EXPECT_EQ(s[1].sample.id, "b.bmp");
  EXPECT_EQ(s[1].sample.label, 1);
  EXPECT_EQ(s[1].group, "");
  EXPECT_EQ(s[1].sample.mask.at<uint8_t>(6, 6), 255);
  EXPECT_EQ(s[2].sample.label, 1);
  EXPECT_EQ(s[2].group, "two\nlines");
  EXPECT_EQ(s[3].sample.label, 0);
  EXPECT_EQ(s[3].group, "p");
  EXPECT_EQ(s[3].sample.mask.at<uint8_t>(2, 2), 255);
}

TEST_F(ReaderTest, ManifestGroupColumnIsOptionalAndNormalOptIn) {
  const cv::Mat img = grey_pattern();
  image("a.png", img);
  image("m.png", rect_mask(img.size(), {1, 1, 2, 2}));
  image("n.png", img);
  image("z.png", cv::Mat::zeros(img.size(), CV_8UC1));
  const fs::path manifest = write("m.csv", R"(
image,label,mask
a.png,malignant,m.png
n.png,normal,z.png
)");
  ReadReport report;
  std::vector<LabeledImage> s = read_csv_manifest(manifest, {}, report);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(report.excluded_normal, 1);
  EXPECT_TRUE(report.issues.empty());
  ReadOptions with_normal;
  with_normal.include_normal = true;
  ReadReport report2;
  s = read_csv_manifest(manifest, with_normal, report2);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[1].sample.label, 0);
}

TEST_F(ReaderTest, ManifestBadRowsAreReportedOnceWithTheirLine) {
  const cv::Size size(40, 24);
  const cv::Mat img = grey_pattern();
  const std::string png = encode(".png", img);
  image("ok.png", img);
  image("ok_mask.png", rect_mask(size, {1, 1, 2, 2}));
  image("small_mask.png", rect_mask({10, 10}, {1, 1, 2, 2}));
  write("trunc.png", png.substr(0, png.size() / 3));
  write("empty.png", "");
  image("ok2.png", img);
  image("ok3.png", img);
  const fs::path manifest = write("m.csv", R"(
image,label,mask
ok.png,benign,ok_mask.png
ok2.png,cancer,ok_mask.png
missing.png,malignant,ok_mask.png
ok2.png,benign,small_mask.png
trunc.png,1,ok_mask.png
empty.png,0,ok_mask.png
ok2.png,1
ok.png,1,ok_mask.png
ok3.png,benign,absent_mask.png
"unterminated,1,ok_mask.png
)");
  const std::string m = manifest.string();
  ReadReport report;
  const std::vector<LabeledImage> s = read_csv_manifest(manifest, {}, report);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].sample.id, "ok.png");
  const std::vector<std::pair<int, std::string>> expected = {
      {3, "unknown label \"cancer\""},
      {4, path_of("missing.png") + ": file does not exist"},
      {5, path_of("small_mask.png") + ": mask is 10x10 but the image is 40x24"},
      {6, path_of("trunc.png") + ": not a decodable image"},
      {7, path_of("empty.png") + ": empty file"},
      {8, "expected 3 fields, found 2"},
      {9, "ok.png: already listed at line 2"},
      {10, path_of("absent_mask.png") + ": file does not exist"},
      {11, "unterminated quoted field"}};
  ASSERT_EQ(report.issues.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(report.issues[i].path, m + ":" + std::to_string(expected[i].first));
    EXPECT_EQ(report.issues[i].reason.rfind(expected[i].second, 0), 0u) << report.issues[i].reason;
  }

  ReadOptions strict;
  strict.strict = true;
  ReadReport unused;
  try {
    read_csv_manifest(manifest, strict, unused);
    ADD_FAILURE() << "strict read accepted bad data";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), m + ":3: " + report.issues.front().reason);
  }
}

// Found by the csv fuzz target (tests/fuzz_regressions/csv/dev_zero.csv): a manifest naming
// /dev/zero was read until the process ran out of memory; a FIFO would block for ever.
TEST_F(ReaderTest, ManifestRowsNamingDevicesOrFifosAreBadData) {
  const cv::Mat img = grey_pattern();
  image("ok.png", img);
  image("ok_mask.png", rect_mask(img.size(), {1, 1, 2, 2}));
  const fs::path fifo = dir_ / "fifo.png";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const fs::path manifest = write("m.csv",
                                  "image,label,mask\n/dev/zero,0,ok_mask.png\n"
                                  "ok.png,1,fifo.png\n");
  ReadReport report;
  EXPECT_TRUE(read_csv_manifest(manifest, {}, report).empty());
  ASSERT_EQ(report.issues.size(), 2u);
  EXPECT_EQ(report.issues[0].path, manifest.string() + ":2");
  EXPECT_EQ(report.issues[0].reason, "/dev/zero: not a regular file (a FIFO, socket or device)");
  EXPECT_EQ(report.issues[1].path, manifest.string() + ":3");
  EXPECT_EQ(report.issues[1].reason,
            fifo.string() + ": not a regular file (a FIFO, socket or device)");
  EXPECT_THROW(read_grey_image("/dev/zero", {}), std::runtime_error);
}

TEST_F(ReaderTest, ManifestHeaderProblemsThrowWithLocation) {
  ReadReport report;
  for (const auto& [text, message] : std::vector<std::pair<std::string, std::string>>{
           {"", ":1: empty file"},
           {"\n\n", ":1: no header line"},
           {"image,label\na.png,0\n", ":1: missing column \"mask\""},
           {"image,label,mask,patient\n", ":1: unknown column \"patient\""},
           {"\n\nimage,label,mask,image\n", ":2: column \"image\" appears twice"}}) {
    const fs::path manifest = write("h.csv", text);
    try {
      read_csv_manifest(manifest, {}, report);
      ADD_FAILURE() << "accepted header " << text;
    } catch (const std::runtime_error& e) {
      EXPECT_EQ(std::string(e.what()).rfind(manifest.string() + message, 0), 0u) << e.what();
    }
  }
  EXPECT_THROW(read_csv_manifest(dir_ / "absent.csv", {}, report), std::runtime_error);
}

}  // namespace
}  // namespace emt
