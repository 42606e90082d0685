// The phone's image geometry (mobile/preprocess.h) on cases small enough to compute by hand:
// padding, OpenCV's rounding rules for area averages, its INTER_AREA enlarging weights,
// normalisation, channel replication, and restore_mask's bilinear map and crop. Standard library
// only, so it runs under qemu in the aarch64 build too; tests/graph2mobile compares both
// functions with OpenCV itself on random images.
#include "mobile/preprocess.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <stdexcept>
#include <vector>

namespace {

using emt::mobile::GreyImage;
using emt::mobile::preprocess_grey;
using emt::mobile::restore_mask;

GreyImage grey(const std::vector<uint8_t>& pixels, int width, int height) {
  return GreyImage{pixels.data(), width, height, width};
}

// With mean 0 and std 1/255 the network input is the resized grey level itself.
std::vector<float> levels(const GreyImage& image, int input_size) {
  std::vector<float> out(static_cast<size_t>(input_size) * input_size, -1.0f);
  preprocess_grey(image, input_size, 1, 0.0f, 1.0f / 255.0f, out.data());
  for (float& v : out) v = std::nearbyint(v);  // (p / 255) / (1 / 255) is p to within a ulp
  return out;
}

TEST(MobilePreprocess, PadsWideImageAndAveragesTwoByTwoRoundingHalfUp) {
  // 4x2 pads to a 4x4 square with one zero row above (top = (4 - 2) / 2) and one below, then
  // shrinks by exactly 2: OpenCV's 2x2 box, (sum + 2) >> 2.
  const std::vector<uint8_t> pixels = {4, 6,   100, 200,  //
                                       0, 255, 8,   9};
  EXPECT_EQ(levels(grey(pixels, 4, 2), 2), (std::vector<float>{
                                               3,   // (0 + 0 + 4 + 6) / 4 = 2.5, half up
                                               75,  // (100 + 200) / 4
                                               64,  // 255 / 4 = 63.75
                                               4,   // (8 + 9) / 4 = 4.25
                                           }));
}

TEST(MobilePreprocess, PadsTallImageWithColumnsLeftAndRight) {
  // 1x3 pads to 3x3 with the image in the middle column; the same size needs no resize.
  const std::vector<uint8_t> pixels = {10, 20, 30};
  EXPECT_EQ(levels(grey(pixels, 1, 3), 3), (std::vector<float>{0, 10, 0, 0, 20, 0, 0, 30, 0}));
}

TEST(MobilePreprocess, IntegerFactorIsTheRoundedBoxMean) {
  // 12x12 to 4: 3x3 boxes; a sum of 9 values is never a half, so rounding is unambiguous.
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> level(0, 255);
  std::vector<uint8_t> pixels(144);
  for (uint8_t& p : pixels) p = static_cast<uint8_t>(level(rng));
  std::vector<float> expected;
  for (int by = 0; by < 4; ++by)
    for (int bx = 0; bx < 4; ++bx) {
      int sum = 0;
      for (int y = 3 * by; y < 3 * by + 3; ++y)
        for (int x = 3 * bx; x < 3 * bx + 3; ++x) sum += pixels[static_cast<size_t>(y * 12 + x)];
      expected.push_back(static_cast<float>((2 * sum + 9) / 18));  // nearest integer to sum / 9
    }
  EXPECT_EQ(levels(grey(pixels, 12, 12), 4), expected);
}

TEST(MobilePreprocess, NonIntegerFactorWeighsPartlyCoveredPixels) {
  // 3x3 to 2: each output pixel covers 1.5 x 1.5 source pixels, the middle row and column by
  // half, so out[0][0] = (4 p00 + 2 p01 + 2 p10 + p11) / 9. A linear ramp keeps the means whole.
  const std::vector<uint8_t> pixels = {9, 18, 27, 36, 45, 54, 63, 72, 81};
  EXPECT_EQ(levels(grey(pixels, 3, 3), 2), (std::vector<float>{21, 33, 57, 69}));
}

TEST(MobilePreprocess, EnlargingByAnIntegerRepeatsPixels) {
  // OpenCV's INTER_AREA enlarging weighs a neighbour by the part of the output pixel past the
  // source pixel's edge: none at an integer factor.
  const std::vector<uint8_t> pixels = {1, 2, 3, 4};
  EXPECT_EQ(levels(grey(pixels, 2, 2), 4),
            (std::vector<float>{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4}));
}

TEST(MobilePreprocess, EnlargingByOneAndAHalfAveragesStraddlingPixels) {
  // 2x2 to 3: the middle output pixel straddles both source pixels, half each (weights 1024 of
  // 2048); the vertical pass keeps 15 bits of each row and rounds its last two bits half up.
  const std::vector<uint8_t> pixels = {10, 21, 30, 40};
  EXPECT_EQ(levels(grey(pixels, 2, 2), 3), (std::vector<float>{
                                               10,
                                               16,
                                               21,  // (10 + 21) / 2 = 15.5 -> 16
                                               20,
                                               25,
                                               31,  // 25.25 -> 25; 30.5 -> 31
                                               30,
                                               35,
                                               40,
                                           }));
}

TEST(MobilePreprocess, NormalisesAndReplicatesChannels) {
  const std::vector<uint8_t> pixels = {0, 51, 102, 255};
  const float mean = 0.5f, std = 0.25f;
  std::vector<float> out(3 * 4, -100.0f);
  preprocess_grey(grey(pixels, 2, 2), 2, 3, mean, std, out.data());
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 4; ++i)
      EXPECT_FLOAT_EQ(out[static_cast<size_t>(c * 4 + i)], (pixels[i] / 255.0f - mean) / std)
          << "channel " << c << " pixel " << i;
  EXPECT_FLOAT_EQ(out[0], -2.0f);
  EXPECT_FLOAT_EQ(out[3], 2.0f);
}

TEST(MobilePreprocess, ReadsRowsThroughTheStride) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> level(0, 255);
  const int width = 37, height = 23, stride = 50;
  std::vector<uint8_t> frame(static_cast<size_t>(stride) * height), packed;
  for (uint8_t& p : frame) p = static_cast<uint8_t>(level(rng));
  for (int y = 0; y < height; ++y)
    packed.insert(packed.end(), frame.begin() + y * stride, frame.begin() + y * stride + width);
  for (int input_size : {16, 32, 64})
    EXPECT_EQ(levels(GreyImage{frame.data(), width, height, stride}, input_size),
              levels(grey(packed, width, height), input_size))
        << "input " << input_size;
}

TEST(MobilePreprocess, RejectsBadArguments) {
  const std::vector<uint8_t> pixels(4, 0);
  std::vector<float> out(16);
  EXPECT_THROW(preprocess_grey(GreyImage{}, 2, 1, 0, 1, out.data()), std::invalid_argument);
  EXPECT_THROW(preprocess_grey(GreyImage{pixels.data(), 2, 2, 1}, 2, 1, 0, 1, out.data()),
               std::invalid_argument);
  EXPECT_THROW(preprocess_grey(grey(pixels, 2, 2), 0, 1, 0, 1, out.data()), std::invalid_argument);
  EXPECT_THROW(preprocess_grey(grey(pixels, 2, 2), 2, 0, 0, 1, out.data()), std::invalid_argument);
  EXPECT_THROW(preprocess_grey(grey(pixels, 2, 2), 2, 1, 0, 0, out.data()), std::invalid_argument);
  std::vector<uint8_t> mask(4);
  EXPECT_THROW(restore_mask(out.data(), 0, 2, 2, 0.5f, mask.data()), std::invalid_argument);
  EXPECT_THROW(restore_mask(out.data(), 2, 0, 2, 0.5f, mask.data()), std::invalid_argument);
}

TEST(MobileRestoreMask, ConstantMapGivesAConstantMask) {
  const std::vector<float> probs(16 * 16, 0.7f);
  for (const auto& [width, height] : {std::pair{40, 25}, std::pair{16, 16}, std::pair{5, 8}}) {
    std::vector<uint8_t> mask(static_cast<size_t>(width) * height, 7);
    restore_mask(probs.data(), 16, width, height, 0.5f, mask.data());
    EXPECT_EQ(mask, std::vector<uint8_t>(mask.size(), 255)) << width << "x" << height;
    restore_mask(probs.data(), 16, width, height, 0.8f, mask.data());
    EXPECT_EQ(mask, std::vector<uint8_t>(mask.size(), 0)) << width << "x" << height;
  }
}

TEST(MobileRestoreMask, InterpolatesAtPixelCentres) {
  // Columns 0 and 1 of a 2x2 map enlarged to 4x4: pixel centres at -0.25 (clamped to 0), 0.25,
  // 0.75 and 1.25 (clamped to 1) give 0, 0.25, 0.75, 1 in every row. A value equal to the
  // threshold is in the mask.
  const std::vector<float> probs = {0, 1, 0, 1};
  std::vector<uint8_t> mask(16, 7);
  restore_mask(probs.data(), 2, 4, 4, 0.5f, mask.data());
  EXPECT_EQ(mask, (std::vector<uint8_t>{0, 0, 255, 255, 0, 0, 255, 255,  //
                                        0, 0, 255, 255, 0, 0, 255, 255}));
  restore_mask(probs.data(), 2, 4, 4, 0.25f, mask.data());
  EXPECT_EQ(mask, (std::vector<uint8_t>{0, 255, 255, 255, 0, 255, 255, 255,  //
                                        0, 255, 255, 255, 0, 255, 255, 255}));
}

TEST(MobileRestoreMask, CropsThePaddingOff) {
  // A 4x2 image pads to 4x4 with one row above: its rows are the square's rows 1 and 2, at
  // 0.25 and 0.75 of a map whose rows are 0 and 1.
  const std::vector<float> rows = {0, 0, 1, 1};
  std::vector<uint8_t> wide(8, 7);
  restore_mask(rows.data(), 2, 4, 2, 0.5f, wide.data());
  EXPECT_EQ(wide, (std::vector<uint8_t>{0, 0, 0, 0, 255, 255, 255, 255}));
  // A 2x4 image pads with one column left: its columns are the square's columns 1 and 2.
  const std::vector<float> columns = {0, 1, 0, 1};
  std::vector<uint8_t> tall(8, 7);
  restore_mask(columns.data(), 2, 2, 4, 0.5f, tall.data());
  EXPECT_EQ(tall, (std::vector<uint8_t>{0, 255, 0, 255, 0, 255, 0, 255}));
}

}  // namespace
