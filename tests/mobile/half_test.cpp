// float16 weight storage: conversions against hand-written bit patterns and an exhaustive round
// trip, and a model file written with float16 weights.
#include "mobile/half.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <random>
#include <stdexcept>

#include "mobile/artifact.h"

namespace {

using namespace emt::mobile;

TEST(Half, KnownValues) {
  EXPECT_EQ(to_half(1.0f), 0x3c00);
  EXPECT_EQ(to_half(-2.0f), 0xc000);
  EXPECT_EQ(to_half(0.1f), 0x2e66);  // 0.0999755859375, the nearest half
  EXPECT_EQ(to_half(65504.0f), 0x7bff);
  EXPECT_EQ(to_half(6.103515625e-05f), 0x0400);  // 2^-14, the smallest normal
  EXPECT_EQ(to_half(5.9604645e-08f), 0x0001);    // 2^-24, the smallest subnormal
  EXPECT_EQ(to_half(2.0e-08f), 0x0000);          // below half of it: zero
  EXPECT_EQ(to_half(-0.0f), 0x8000);
  EXPECT_EQ(to_half(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_TRUE(std::isnan(from_half(to_half(std::numeric_limits<float>::quiet_NaN()))));
  // Ties go to the even mantissa: 1 + 2^-11 lies halfway between 1 and 1 + 2^-10.
  EXPECT_EQ(to_half(1.0f + 0x1p-11f), 0x3c00);
  EXPECT_EQ(to_half(1.0f + 3 * 0x1p-11f), 0x3c02);
  // Rounding up out of the mantissa carries into the exponent.
  EXPECT_EQ(to_half(2.0f - 0x1p-12f), 0x4000);
  EXPECT_THROW(to_half(65520.0f), std::range_error);
  EXPECT_THROW(to_half(-1e6f), std::range_error);
}

// Every half converts to a float and back to itself (NaNs stay NaN), and every float rounds to
// the half nearest to it.
TEST(Half, ExhaustiveRoundTripAndNearestRounding) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = from_half(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_EQ(h & 0x7c00u, 0x7c00u);
      continue;
    }
    ASSERT_EQ(to_half(f), h) << std::hex << h;
  }
  std::mt19937 rng(4);
  std::uniform_real_distribution<float> u(-60000.0f, 60000.0f);
  for (int i = 0; i < 20000; ++i) {
    const float f = i % 2 ? u(rng) : u(rng) * 1e-6f;
    const uint16_t h = to_half(f);
    const double error = std::abs(double(from_half(h)) - f);
    // The neighbours one unit away are no nearer.
    for (const int step : {-1, 1}) {
      const auto neighbour = static_cast<uint16_t>(h + step);
      if ((neighbour & 0x7c00u) == 0x7c00u || (neighbour ^ h) & 0x8000u) continue;
      EXPECT_LE(error, std::abs(double(from_half(neighbour)) - f)) << f;
    }
  }
}

TEST(Half, ModelFileWithFloat16WeightsIsHalfTheSize) {
  Artifact a;
  a.graph = "f16";
  a.values = {{"image", 1, 4, 4}, {"out", 2, 4, 4}};
  std::mt19937 rng(7);
  std::normal_distribution<float> w(0.0f, 0.3f);
  for (int i = 0; i < 2 * 9 + 2; ++i) a.weights.push_back(w(rng));
  a.steps = {{StepKind::kConv2d,
              "conv",
              {0},
              1,
              {1, 4, 4, 2, 4, 4, 3, 1, 1, 1, 1, 1, 1, Activation::kNone},
              {0, 18},
              {18, 2}}};
  a.outputs = {{"seg", 1}};
  const auto dir = std::filesystem::temp_directory_path();
  const auto f32 = dir / "emtm_half_f32.emtm", f16 = dir / "emtm_half_f16.emtm";
  write_artifact(a, f32);
  a.weight_storage = WeightStorage::kF16;
  write_artifact(a, f16);
  EXPECT_EQ(std::filesystem::file_size(f32) - std::filesystem::file_size(f16),
            a.weights.size() * 2);
  const Artifact back = read_artifact(f16);
  EXPECT_EQ(back.weight_storage, WeightStorage::kF16);
  ASSERT_EQ(back.weights.size(), a.weights.size());
  for (size_t i = 0; i < a.weights.size(); ++i)
    EXPECT_EQ(back.weights[i], from_half(to_half(a.weights[i]))) << i;
  a.weights[3] = 1e5f;
  EXPECT_THROW(write_artifact(a, f16), std::runtime_error);
  EXPECT_EQ(read_artifact(f16).weights.size(), back.weights.size()) << "the old file survives";
  std::filesystem::remove(f32);
  std::filesystem::remove(f16);
}

}  // namespace
