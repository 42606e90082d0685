// Image headers and limits: the header readers against files OpenCV wrote, broken headers, and
// the image bombs of issue 12, refused from their headers before anything is decoded.
#include "engine/io/image_limits.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <opencv2/imgcodecs.hpp>
#include <random>
#include <string>
#include <vector>

#include "engine/data/dataset.h"
#include "engine/data/readers.h"
#include "engine/io/image_header.h"
#include "tests/engine/image_files.h"
#include "tests/engine/temp_dir_test.h"

namespace emt {
namespace {

namespace fs = std::filesystem;

std::string file_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The message read_image_header refuses `bytes` with; fails the test if it accepts them.
std::string refusal(std::string_view bytes) {
  try {
    read_image_header(bytes);
  } catch (const ImageRefused& e) {
    return e.what();
  }
  ADD_FAILURE() << "header accepted: " << bytes.size() << " bytes";
  return "";
}

// The PNG specification's CRC-32 (reflected 0xEDB88320), bit by bit.
uint32_t crc32(std::string_view data) {
  uint32_t crc = 0xFFFFFFFF;
  for (const char c : data) {
    crc ^= static_cast<unsigned char>(c);
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0xEDB88320 & (0u - (crc & 1)));
  }
  return ~crc;
}

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

std::string png_chunk(const std::string& type, const std::string& data) {
  return be32(static_cast<uint32_t>(data.size())) + type + data + be32(crc32(type + data));
}

const std::string kPngSignature("\x89PNG\r\n\x1a\n", 8);

// A PNG that is only a signature, an IHDR and an IEND: what a 7 MB bomb's header says, with none
// of its pixels.
std::string png_header_only(uint32_t width, uint32_t height, int depth, int colour_type) {
  const std::string ihdr = be32(width) + be32(height) + static_cast<char>(depth) +
                           static_cast<char>(colour_type) + std::string(3, '\0');
  return kPngSignature + png_chunk("IHDR", ihdr) + png_chunk("IEND", "");
}

class ImageLimitsTest : public test::TempDirTest {
 protected:
  fs::path image(const std::string& name, const cv::Mat& m) {
    return test::write_image(dir_, name, m);
  }

  // The message read_grey_image refuses `path` with under `limits`.
  static std::string read_refusal(const fs::path& path, const ImageLimits& limits) {
    try {
      read_grey_image(path, limits);
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    ADD_FAILURE() << path << " was decoded";
    return "";
  }
};

cv::Mat pattern(int rows, int cols, int type) {
  cv::Mat m(rows, cols, type);
  cv::randu(m, 0, 250);
  return m;
}

TEST(ImageHeaderCrc, MatchesTheStandardCheckValue) {
  EXPECT_EQ(crc32("123456789"), 0xCBF43926u);  // the check value every CRC-32 catalogue lists
}

TEST_F(ImageLimitsTest, HeadersMatchWhatOpenCvWrote) {
  const int rows = 21, cols = 37;  // odd and unequal, so a swapped or halved side shows
  struct Case {
    std::string name;
    int type;
    const char* format;
    bool exact_channels;  // BMP's header only bounds them
  };
  const std::vector<Case> cases = {
      {"g8.png", CV_8UC1, "PNG", true}, {"g16.png", CV_16UC1, "PNG", true},
      {"c8.png", CV_8UC3, "PNG", true}, {"c16.png", CV_16UC3, "PNG", true},
      {"a8.png", CV_8UC4, "PNG", true}, {"a16.png", CV_16UC4, "PNG", true},
      {"g.jpg", CV_8UC1, "JPEG", true}, {"c.jpeg", CV_8UC3, "JPEG", true},
      {"g.bmp", CV_8UC1, "BMP", false}, {"c.bmp", CV_8UC3, "BMP", false},
      {"a.bmp", CV_8UC4, "BMP", false},
  };
  for (const Case& c : cases) {
    const cv::Mat written = pattern(rows, cols, c.type);
    const std::string bytes = file_bytes(image(c.name, written));
    const ImageHeader h = read_image_header(bytes);
    const cv::Mat decoded =
        cv::imdecode(std::vector<uchar>(bytes.begin(), bytes.end()), cv::IMREAD_UNCHANGED);
    EXPECT_STREQ(h.format, c.format) << c.name;
    EXPECT_EQ(h.width, cols) << c.name;
    EXPECT_EQ(h.height, rows) << c.name;
    if (c.exact_channels) {
      EXPECT_EQ(h.channels, written.channels()) << c.name;
      EXPECT_EQ(h.bytes_per_channel, static_cast<int>(written.elemSize1())) << c.name;
      EXPECT_EQ(h.bytes_per_pixel(), static_cast<int64_t>(decoded.elemSize())) << c.name;
    } else {
      EXPECT_GE(h.bytes_per_pixel(), static_cast<int64_t>(decoded.elemSize())) << c.name;
    }
  }
}

TEST_F(ImageLimitsTest, PngTransparencyChunkMakesRgbDecodeToFourChannels) {
  // OpenCV cannot write tRNS, so one is spliced in after the IHDR (8 + 25 bytes); libpng checks
  // its CRC, and ignores a chunk whose CRC is wrong.
  const std::string rgb = file_bytes(image("c.png", pattern(5, 9, CV_8UC3)));
  const std::string with_trns =
      rgb.substr(0, 33) + png_chunk("tRNS", std::string(6, '\0')) + rgb.substr(33);
  const cv::Mat decoded =
      cv::imdecode(std::vector<uchar>(with_trns.begin(), with_trns.end()), cv::IMREAD_UNCHANGED);
  ASSERT_EQ(decoded.channels(), 4);
  EXPECT_EQ(read_image_header(with_trns).channels, 4);
  EXPECT_EQ(read_image_header(rgb).channels, 3);
}

TEST_F(ImageLimitsTest, EveryShortPrefixOfAHeaderIsRefused) {
  const cv::Mat m = pattern(21, 37, CV_8UC3);
  const std::string png = file_bytes(image("c.png", m));
  const std::string jpg = file_bytes(image("c.jpg", m));
  const std::string bmp = file_bytes(image("c.bmp", m));
  // Where each header's last field ends: IHDR's CRC, SOF0's component count, BMP's bit count.
  const size_t sof = jpg.find("\xFF\xC0");
  ASSERT_NE(sof, std::string::npos);
  for (const auto& [bytes, end] :
       {std::pair{png, size_t{33}}, std::pair{jpg, sof + 10}, std::pair{bmp, size_t{30}}}) {
    for (size_t n = 0; n < end; ++n) {
      const std::string message = refusal(std::string_view(bytes).substr(0, n));
      EXPECT_TRUE(contains(message, "file ends inside the header") ||
                  contains(message, "no PNG, JPEG or BMP signature"))
          << n << ": " << message;
    }
    EXPECT_EQ(read_image_header(std::string_view(bytes).substr(0, end)).width, 37);
  }
}

TEST(ImageHeader, InconsistentHeadersAreRefusedWithTheReason) {
  const std::string bmp_start = "BM" + std::string(12, '\0');
  std::string bmp_zero_width = bmp_start + std::string("\x28\0\0\0", 4) + std::string(16, '\0');
  bmp_zero_width[28] = 24;  // 24 bits per pixel, width and height 0
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"GIF89a and more", "no PNG, JPEG or BMP signature"},
      {png_header_only(0, 10, 8, 0), "size 0x10"},
      {png_header_only(10, 10, 3, 0), "bit depth 3 with colour type 0"},
      {png_header_only(10, 10, 16, 3), "bit depth 16 with colour type 3"},
      {png_header_only(0x80000000u, 1, 8, 0), "size 2147483648x1"},
      {kPngSignature + png_chunk("IEND", ""), "not a 13-byte IHDR"},
      {std::string("\xFF\xD8\xFF\xDA\x00\x02", 6), "image data before any frame header"},
      {std::string("\xFF\xD8\xFF\xC0\x00\x0B\x08\x00\x00\x00\x10\x01", 12), "DNL"},
      {std::string("\xFF\xD8\xFF\xE0\x00\x01", 6), "segment length 1"},
      {bmp_start + std::string("\x14\0\0\0", 4) + std::string(16, '\0'), "info header of 20"},
      {bmp_zero_width, "size 0x0"},
  };
  for (const auto& [bytes, reason] : cases)
    EXPECT_TRUE(contains(refusal(bytes), reason)) << reason << ": " << refusal(bytes);
}

TEST(ImageHeader, GarbageAfterASignatureIsRefusedOrReadNeverOverrun) {
  std::mt19937 rng(12);
  const std::array<std::string, 3> signatures = {kPngSignature, "\xFF\xD8\xFF", "BM"};
  for (int trial = 0; trial < 3000; ++trial) {
    std::string bytes = signatures[static_cast<size_t>(trial % 3)];
    const size_t tail = rng() % 64;
    for (size_t i = 0; i < tail; ++i) bytes += static_cast<char>(rng());
    try {
      const ImageHeader h = read_image_header(bytes);
      EXPECT_GT(h.width, 0);
      EXPECT_GT(h.height, 0);
      EXPECT_GT(h.channels, 0);
    } catch (const ImageRefused& e) {
      EXPECT_NE(std::string(e.what()), "");
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The bombs of issue 12

TEST_F(ImageLimitsTest, StripsAreRefusedForTheirPaddedSquare) {
  for (const auto& [name, size] :
       {std::pair{"wide.png", cv::Size(200000, 1)}, std::pair{"tall.png", cv::Size(1, 150000)}}) {
    const fs::path path = image(name, cv::Mat::zeros(size, CV_8UC1));
    EXPECT_LT(fs::file_size(path), 1000u);  // a few hundred bytes ask for gigapixels
    const int64_t side = std::max(size.width, size.height);
    const std::string message = read_refusal(path, {});
    EXPECT_EQ(message.rfind(path.string() + ": ", 0), 0u) << message;
    EXPECT_TRUE(contains(message, std::to_string(side) + "x" + std::to_string(side) +
                                      " square of " + std::to_string(side * side) + " pixels"))
        << message;
    EXPECT_TRUE(contains(message, "data.max_padded_pixels = 67108864")) << message;
    EXPECT_TRUE(contains(message, "--set data.max_padded_pixels=")) << message;

    // Valid files otherwise: with the padded limit raised they decode.
    ImageLimits raised;
    raised.max_padded_pixels = side * side;
    EXPECT_EQ(read_grey_image(path, raised).size(), size);
  }
}

TEST_F(ImageLimitsTest, HeaderOnlySixteenBitRgbaBombIsRefusedUndecoded) {
  const std::string bomb = png_header_only(30000, 30000, 16, 6);
  const ImageHeader h = read_image_header(bomb);
  EXPECT_EQ(h.width, 30000);
  EXPECT_EQ(h.height, 30000);
  EXPECT_EQ(h.bytes_per_pixel(), 8);
  const fs::path path = write("bomb.png", bomb);
  const std::string message = read_refusal(path, {});
  EXPECT_TRUE(contains(message,
                       "30000x30000 PNG has 900000000 pixels, over the limit "
                       "data.max_image_pixels = 67108864; not decoded"))
      << message;

  // With the pixel limits out of the way, the bytes-per-pixel limit still refuses it from its
  // header: the file has no pixel data, so a decoder would have said something else.
  ImageLimits limits;
  limits.max_pixels = limits.max_padded_pixels = 900000000;
  limits.max_bytes_per_pixel = 4;
  EXPECT_TRUE(contains(read_refusal(path, limits),
                       "decodes to 8 bytes per pixel (4 channels of 16 bits), over the limit "
                       "data.max_bytes_per_pixel = 4"))
      << read_refusal(path, limits);
}

TEST(ImageLimits, SettingsReachTheLimitsAndMustBePositive) {
  Config config;
  EXPECT_EQ(image_limits(config).max_pixels, ImageLimits{}.max_pixels);
  config.set_from_assignment("data.max_image_pixels=100");
  config.set_from_assignment("data.max_padded_pixels=200");
  config.set_from_assignment("data.max_bytes_per_pixel=3");
  const ImageLimits limits = image_limits(config);
  EXPECT_EQ(limits.max_pixels, 100);
  EXPECT_EQ(limits.max_padded_pixels, 200);
  EXPECT_EQ(limits.max_bytes_per_pixel, 3);
  // Refused where it is set, so that no command starts with a limit that refuses every image.
  try {
    config.set_from_assignment("data.max_padded_pixels=0");
    ADD_FAILURE() << "a zero limit was accepted";
  } catch (const GraphError& e) {
    EXPECT_TRUE(contains(e.what(),
                         "<command line --set>: error: setting 'data.max_padded_pixels' "
                         "must be at least 1, got 0"))
        << e.what();
  }
  EXPECT_EQ(image_limits(config).max_padded_pixels, 200);
}

// A BUSI folder with the three bombs (and their masks) among good samples.
class BombFolderTest : public ImageLimitsTest {
 protected:
  void SetUp() override {
    ImageLimitsTest::SetUp();
    for (int k = 0; k < 6; ++k) {
      const std::string cls = k % 2 ? "malignant" : "benign";
      const std::string name = cls + "/good" + std::to_string(k);
      image(name + ".png", pattern(30 + k, 40, CV_8UC1));
      image(name + "_mask.png", pattern(30 + k, 40, CV_8UC1));
    }
    image("benign/wide.png", cv::Mat::zeros(1, 200000, CV_8UC1));
    image("benign/wide_mask.png", cv::Mat::zeros(1, 200000, CV_8UC1));
    image("malignant/tall.png", cv::Mat::zeros(150000, 1, CV_8UC1));
    image("malignant/tall_mask.png", cv::Mat::zeros(150000, 1, CV_8UC1));
    write("malignant/rgba.png", png_header_only(30000, 30000, 16, 6));
    write("malignant/rgba_mask.png", png_header_only(30000, 30000, 16, 6));
  }

  // Path and the setting its refusal must name, in reading order.
  std::vector<std::pair<std::string, std::string>> expected() const {
    return {{(dir_ / "benign/wide.png").string(), "data.max_padded_pixels"},
            {(dir_ / "malignant/rgba.png").string(), "data.max_image_pixels"},
            {(dir_ / "malignant/tall.png").string(), "data.max_padded_pixels"}};
  }
};

TEST_F(BombFolderTest, GoodImagesAreReadAndBombsReportedSkipped) {
  ReadReport report;
  const std::vector<RawSample> samples = read_busi_folder(dir_, {}, report);
  std::vector<std::string> ids;
  for (const RawSample& s : samples) ids.push_back(s.id);
  EXPECT_EQ(ids,
            (std::vector<std::string>{"benign/good0", "benign/good2", "benign/good4",
                                      "malignant/good1", "malignant/good3", "malignant/good5"}));
  ASSERT_EQ(report.issues.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(report.issues[i].path, expected()[i].first);
    EXPECT_TRUE(contains(report.issues[i].reason, expected()[i].second)) << report.issues[i].reason;
  }
}

TEST_F(BombFolderTest, LoadDatasetSkipsThemOrStopsUnderStrict) {
  Config config;
  config.set_from_assignment("data.source=" + dir_.string());
  config.set_from_assignment("data.input_size=16");
  const Dataset data = load_dataset(config, 1);
  EXPECT_EQ(data.samples.size(), 6u);
  ASSERT_EQ(data.skipped.size(), 3u);
  EXPECT_EQ(data.skipped[1].path, expected()[1].first);

  // The limit comes from the settings: every good image pads to 40x40, so 1600 pixels pass and
  // 1599 refuse them all.
  Config at_limit = config;
  at_limit.set_from_assignment("data.max_padded_pixels=1600");
  EXPECT_EQ(load_dataset(at_limit, 1).samples.size(), 6u);
  at_limit.set_from_assignment("data.max_padded_pixels=1599");
  try {
    load_dataset(at_limit, 1);
    ADD_FAILURE() << "images over the limit were read";
  } catch (const GraphError& e) {
    EXPECT_TRUE(contains(e.what(), "no usable images")) << e.what();
    EXPECT_TRUE(contains(e.what(),
                         "40x30 PNG pads to a 40x40 square of 1600 pixels, over the "
                         "limit data.max_padded_pixels = 1599"))
        << e.what();
  }

  config.set_from_assignment("data.strict=true");
  try {
    load_dataset(config, 1);
    ADD_FAILURE() << "strict read accepted the bombs";
  } catch (const GraphError& e) {
    EXPECT_TRUE(contains(e.what(), expected()[0].first + ": 200000x1 PNG pads to")) << e.what();
  }
}

}  // namespace
}  // namespace emt
