#include "engine/data/augment.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "engine/dsl/config.h"
#include "engine/ir/source_loc.h"

namespace emt {
namespace {

const Normalization kNorm{};  // mean 0.5, std 0.25: pixel 0 is -2, pixel 255 is 2

float normalized(float intensity) { return (intensity - kNorm.mean) / kNorm.std; }
float intensity(float value) { return value * kNorm.std + kNorm.mean; }

// A phantom lesion image: realistic speckle, a hypo-echoic lesion and its mask.
Sample phantom_sample(int size, int channels, int index = 0) {
  PhantomConfig cfg;
  return preprocess(generate_phantom(cfg, index), size, channels, kNorm);
}

// A bright square (intensity `level`) on black, its mask exactly the square.
Sample square_sample(int size, int channels, cv::Rect square, float level = 1.0f) {
  Sample s{"square", std::vector<float>(static_cast<size_t>(channels) * size * size, normalized(0)),
           std::vector<float>(static_cast<size_t>(size) * size, 0.0f), 1};
  for (int c = 0; c < channels; ++c)
    for (int y = square.y; y < square.y + square.height; ++y)
      for (int x = square.x; x < square.x + square.width; ++x) {
        s.image[(static_cast<size_t>(c) * size + y) * size + x] = normalized(level);
        s.mask[static_cast<size_t>(y) * size + x] = 1.0f;
      }
  return s;
}

AugmentConfig all_off() {
  AugmentConfig c;
  c.flip_h = c.rotate_deg = c.scale = c.translate = 0;
  c.brightness = c.contrast = c.gamma = c.speckle = 0;
  return c;
}

AugmentConfig geometric_only() {
  AugmentConfig c = all_off();
  c.flip_h = 0.5;
  c.rotate_deg = 30;
  c.scale = 0.2;
  c.translate = 0.1;
  return c;
}

AugmentConfig photometric_only() {
  AugmentConfig c = all_off();
  c.brightness = 0.2;
  c.contrast = 0.3;
  c.gamma = 0.3;
  c.speckle = 0.2;
  return c;
}

double mean_intensity(const Sample& s, int plane = 0) {
  const size_t n = s.mask.size();
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += intensity(s.image[plane * n + i]);
  return sum / static_cast<double>(n);
}

double std_intensity(const Sample& s) {
  const double mean = mean_intensity(s);
  double sum = 0;
  for (size_t i = 0; i < s.mask.size(); ++i) {
    const double d = intensity(s.image[i]) - mean;
    sum += d * d;
  }
  return std::sqrt(sum / static_cast<double>(s.mask.size()));
}

// Weighted centroid of a plane of non-negative weights.
cv::Point2d centroid(const std::vector<float>& weights, int side) {
  double sw = 0, sx = 0, sy = 0;
  for (int y = 0; y < side; ++y)
    for (int x = 0; x < side; ++x) {
      const double w = weights[static_cast<size_t>(y) * side + x];
      sw += w;
      sx += w * x;
      sy += w * y;
    }
  return {sx / sw, sy / sw};
}

std::vector<float> intensity_plane(const Sample& s) {
  std::vector<float> w(s.mask.size());
  for (size_t i = 0; i < w.size(); ++i) w[i] = intensity(s.image[i]);
  return w;
}

void expect_binary(const std::vector<float>& mask) {
  for (float v : mask) ASSERT_TRUE(v == 0.0f || v == 1.0f) << v;
}

TEST(Augment, SameSeedGivesIdenticalOutput) {
  const Sample src = phantom_sample(64, 3);
  const AugmentConfig cfg;
  Sample a, b;
  augment(src, a, cfg, 1234, kNorm);
  augment(src, b, cfg, 1234, kNorm);
  EXPECT_EQ(a.image, b.image);
  EXPECT_EQ(a.mask, b.mask);
  EXPECT_EQ(a.id, src.id);
  EXPECT_EQ(a.label, src.label);
  EXPECT_NE(a.image, src.image);
}

TEST(Augment, DifferentSeedsGiveDifferentOutput) {
  const Sample src = phantom_sample(64, 1);
  const AugmentConfig cfg;
  std::set<std::vector<float>> images;
  for (uint64_t seed = 0; seed < 8; ++seed) {
    Sample out;
    augment(src, out, cfg, seed, kNorm);
    images.insert(out.image);
  }
  EXPECT_EQ(images.size(), 8u);
}

TEST(Augment, SeedHelperSeparatesSeedEpochAndIndex) {
  std::set<uint64_t> seeds;
  for (uint64_t s = 0; s < 4; ++s)
    for (int64_t e = 0; e < 4; ++e)
      for (int64_t i = 0; i < 4; ++i) seeds.insert(augment_seed(s, e, i));
  EXPECT_EQ(seeds.size(), 64u);
  EXPECT_EQ(augment_seed(1, 2, 3), augment_seed(1, 2, 3));
}

TEST(Augment, ZeroMagnitudesReproduceInputExactly) {
  const Sample src = phantom_sample(64, 3);
  for (uint64_t seed = 0; seed < 4; ++seed) {
    Sample out;
    augment(src, out, all_off(), seed, kNorm);
    EXPECT_EQ(out.image, src.image);
    EXPECT_EQ(out.mask, src.mask);
  }
  AugmentConfig disabled;  // default magnitudes, switched off
  disabled.enabled = false;
  Sample out;
  augment(src, out, disabled, 7, kNorm);
  EXPECT_EQ(out.image, src.image);
  EXPECT_EQ(out.mask, src.mask);
}

TEST(Augment, FlipMirrorsImageAndMaskExactly) {
  const int side = 48;
  const Sample src = phantom_sample(side, 3);
  AugmentConfig cfg = all_off();
  cfg.flip_h = 1;
  Sample out;
  augment(src, out, cfg, 99, kNorm);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < side; ++y)
      for (int x = 0; x < side; ++x) {
        const size_t at = (static_cast<size_t>(c) * side + y) * side + x;
        const size_t mirror = (static_cast<size_t>(c) * side + y) * side + (side - 1 - x);
        ASSERT_EQ(out.image[at], src.image[mirror]) << c << " " << y << " " << x;
        if (c == 0) {
          ASSERT_EQ(out.mask[at], src.mask[mirror]) << y << " " << x;
        }
      }
}

TEST(Augment, FlipProbabilityIsRespected) {
  AugmentConfig cfg;
  int flips = 0;
  for (uint64_t seed = 0; seed < 2000; ++seed) flips += draw_augment_params(cfg, seed).flip_h;
  EXPECT_NEAR(flips, 1000, 100);
  cfg.flip_h = 0;
  for (uint64_t seed = 0; seed < 200; ++seed) EXPECT_FALSE(draw_augment_params(cfg, seed).flip_h);
}

TEST(Augment, DrawnParametersStayWithinTheirMagnitudes) {
  const AugmentConfig cfg;
  double max_rot = 0, max_shift = 0, max_bright = 0, max_speckle = 0;
  for (uint64_t seed = 0; seed < 2000; ++seed) {
    const AugmentParams p = draw_augment_params(cfg, seed);
    ASSERT_LE(std::abs(p.rotate_deg), cfg.rotate_deg);
    ASSERT_LE(std::abs(p.shift_x), cfg.translate);
    ASSERT_LE(std::abs(p.shift_y), cfg.translate);
    ASSERT_LE(std::abs(p.brightness), cfg.brightness);
    for (auto [f, m] : {std::pair{p.scale, cfg.scale}, std::pair{p.contrast, cfg.contrast},
                        std::pair{p.gamma, cfg.gamma}}) {
      ASSERT_LE(f, 1 + m + 1e-12);
      ASSERT_GE(f, 1 / (1 + m) - 1e-12);
    }
    ASSERT_GE(p.speckle, 0);
    ASSERT_LE(p.speckle, cfg.speckle);
    max_rot = std::max(max_rot, std::abs(p.rotate_deg));
    max_shift = std::max(max_shift, std::abs(p.shift_x));
    max_bright = std::max(max_bright, std::abs(p.brightness));
    max_speckle = std::max(max_speckle, p.speckle);
  }
  EXPECT_GT(max_rot, 0.95 * cfg.rotate_deg);  // the ranges are used, not just respected
  EXPECT_GT(max_shift, 0.95 * cfg.translate);
  EXPECT_GT(max_bright, 0.95 * cfg.brightness);
  EXPECT_GT(max_speckle, 0.95 * cfg.speckle);
}

TEST(Augment, TurningOneTransformOffKeepsTheOtherDraws) {
  const AugmentConfig full;
  AugmentConfig no_rotation = full;
  no_rotation.rotate_deg = 0;
  const AugmentParams a = draw_augment_params(full, 5);
  const AugmentParams b = draw_augment_params(no_rotation, 5);
  EXPECT_EQ(b.rotate_deg, 0);
  EXPECT_EQ(a.scale, b.scale);
  EXPECT_EQ(a.brightness, b.brightness);
  EXPECT_EQ(a.noise_seed, b.noise_seed);
}

TEST(Augment, MaskStaysBinaryAndAlignedWithImage) {
  const int side = 64;
  // Off-centre, so rotation and scale move it as well as turn it.
  const Sample src = square_sample(side, 3, cv::Rect(18, 22, 12, 12));
  const AugmentConfig cfg = geometric_only();
  int moved = 0;
  for (uint64_t seed = 0; seed < 50; ++seed) {
    Sample out;
    augment(src, out, cfg, seed, kNorm);
    expect_binary(out.mask);
    const cv::Point2d image_c = centroid(intensity_plane(out), side);
    const cv::Point2d mask_c = centroid(out.mask, side);
    EXPECT_NEAR(image_c.x, mask_c.x, 0.5) << "seed " << seed;
    EXPECT_NEAR(image_c.y, mask_c.y, 0.5) << "seed " << seed;
    // Area is preserved up to the drawn zoom.
    const double scale = draw_augment_params(cfg, seed).scale;
    double area = 0;
    for (float v : out.mask) area += v;
    EXPECT_NEAR(area / (144 * scale * scale), 1.0, 0.15) << "seed " << seed;
    const cv::Point2d before = centroid(src.mask, side);
    moved += cv::norm(mask_c - before) > 1.0;
  }
  EXPECT_GT(moved, 30);
}

TEST(Augment, WarpMovesContentTheDocumentedWay) {
  const int side = 64;
  const Sample src = square_sample(side, 1, cv::Rect(40, 28, 8, 8));  // right of centre
  const cv::Point2d before = centroid(src.mask, side);                // (43.5, 31.5)
  Sample out;
  AugmentParams shift;
  shift.shift_x = 0.125;    // 8 px right
  shift.shift_y = -0.0625;  // 4 px up
  apply_augment(src, out, shift, kNorm);
  const cv::Point2d shifted = centroid(out.mask, side);
  EXPECT_NEAR(shifted.x - before.x, 8, 1e-9);
  EXPECT_NEAR(shifted.y - before.y, -4, 1e-9);

  AugmentParams turn;
  turn.rotate_deg = 90;  // counter-clockwise on screen: right of centre goes up
  apply_augment(src, out, turn, kNorm);
  const cv::Point2d turned = centroid(out.mask, side);
  EXPECT_NEAR(turned.x, 31.5, 0.5);
  EXPECT_NEAR(turned.y, 31.5 - (before.x - 31.5), 0.5);

  AugmentParams zoom;
  zoom.scale = 1.5;  // about the centre: the square's offset from the centre grows by 1.5
  apply_augment(src, out, zoom, kNorm);
  const cv::Point2d zoomed = centroid(out.mask, side);
  EXPECT_NEAR(zoomed.x - 31.5, 1.5 * (before.x - 31.5), 0.5);
}

TEST(Augment, BorderIsBlackAndMaskBackground) {
  const int side = 32;
  Sample src = square_sample(side, 1, cv::Rect(0, 0, side, side), 0.6f);  // all lit
  AugmentParams p;
  p.shift_x = 0.25;  // 8 px: the left 8 columns come from outside
  Sample out;
  apply_augment(src, out, p, kNorm);
  for (int y = 0; y < side; ++y) {
    EXPECT_EQ(out.image[static_cast<size_t>(y) * side + 2], normalized(0));
    EXPECT_EQ(out.mask[static_cast<size_t>(y) * side + 2], 0.0f);
    EXPECT_FLOAT_EQ(out.image[static_cast<size_t>(y) * side + 20], normalized(0.6f));
    EXPECT_EQ(out.mask[static_cast<size_t>(y) * side + 20], 1.0f);
  }
}

TEST(Augment, PhantomMaskStaysBinaryUnderFullAugmentation) {
  const AugmentConfig strong = [] {
    AugmentConfig c;
    c.rotate_deg = 45;
    c.scale = 0.3;
    c.translate = 0.2;
    return c;
  }();
  for (int i = 0; i < 6; ++i) {
    const Sample src = phantom_sample(64, 1, i);
    Sample out;
    augment(src, out, strong, static_cast<uint64_t>(i), kNorm);
    expect_binary(out.mask);
    double lesion = 0;
    for (float v : out.mask) lesion += v;
    EXPECT_GT(lesion, 0);
  }
}

TEST(Augment, PhotometricOpsLeaveTheMaskAlone) {
  const Sample src = phantom_sample(64, 3);
  for (uint64_t seed = 0; seed < 10; ++seed) {
    Sample out;
    augment(src, out, photometric_only(), seed, kNorm);
    EXPECT_EQ(out.mask, src.mask);
    EXPECT_NE(out.image, src.image);
    for (float v : out.image) {  // still a valid normalised [0, 1] intensity
      ASSERT_GE(v, normalized(0) - 1e-5f);
      ASSERT_LE(v, normalized(1) + 1e-5f);
    }
  }
}

TEST(Augment, ReplicatedChannelsGetTheSameTransform) {
  const Sample src = phantom_sample(64, 3);
  const size_t n = src.mask.size();
  for (uint64_t seed = 0; seed < 5; ++seed) {
    AugmentConfig cfg;
    cfg.speckle = 0.3;
    Sample out;
    augment(src, out, cfg, seed, kNorm);
    for (int c = 1; c < 3; ++c)
      EXPECT_TRUE(std::equal(out.image.begin(), out.image.begin() + n, out.image.begin() + c * n));
    // The one-channel version of the same sample gets the very same result.
    Sample grey = phantom_sample(64, 1), grey_out;
    augment(grey, grey_out, cfg, seed, kNorm);
    EXPECT_TRUE(std::equal(grey_out.image.begin(), grey_out.image.end(), out.image.begin()));
  }
}

TEST(Augment, DistinctChannelsGetTheSameTransformToo) {
  // Channel 1 holds half of channel 0's intensity; the warp is linear, so afterwards it still does.
  Sample src = phantom_sample(48, 2);
  const size_t n = src.mask.size();
  for (size_t i = 0; i < n; ++i) src.image[n + i] = normalized(intensity(src.image[i]) * 0.5f);
  AugmentParams p;
  p.rotate_deg = 17;
  p.flip_h = true;
  Sample out;
  apply_augment(src, out, p, kNorm);
  for (size_t i = 0; i < n; ++i)
    ASSERT_NEAR(intensity(out.image[n + i]), 0.5f * intensity(out.image[i]), 1e-5f) << i;
}

TEST(Augment, AliasedSourceAndDestination) {
  const Sample src = phantom_sample(64, 3);
  const AugmentConfig cfg;
  Sample expected;
  augment(src, expected, cfg, 42, kNorm);
  Sample in_place = src;
  augment(in_place, in_place, cfg, 42, kNorm);
  EXPECT_EQ(in_place.image, expected.image);
  EXPECT_EQ(in_place.mask, expected.mask);
}

TEST(Augment, ReusedDestinationGivesTheSameResult) {
  const Sample a = phantom_sample(64, 3, 0), b = phantom_sample(64, 3, 1);
  const AugmentConfig cfg;
  Sample fresh, reused;
  augment(a, reused, cfg, 1, kNorm);
  augment(b, reused, cfg, 2, kNorm);
  augment(b, fresh, cfg, 2, kNorm);
  EXPECT_EQ(reused.image, fresh.image);
  EXPECT_EQ(reused.mask, fresh.mask);
  EXPECT_EQ(reused.id, b.id);
}

TEST(Augment, BrightnessExtremesMoveTheMean) {
  const Sample src = phantom_sample(64, 1);
  const double before = mean_intensity(src);
  Sample out;
  AugmentParams p;
  p.brightness = 0.1;
  apply_augment(src, out, p, kNorm);
  EXPECT_GT(mean_intensity(out), before + 0.05);
  p.brightness = -0.1;
  apply_augment(src, out, p, kNorm);
  EXPECT_LT(mean_intensity(out), before - 0.05);
}

TEST(Augment, GammaExtremesMoveTheMean) {
  const Sample src = phantom_sample(64, 1);
  const double before = mean_intensity(src);
  const double g = 1.1;  // the default magnitude's extremes: exponents 1.1 and 1/1.1
  Sample out;
  AugmentParams p;
  p.gamma = g;
  apply_augment(src, out, p, kNorm);
  EXPECT_LT(mean_intensity(out), before - 0.003);  // x^g < x on (0, 1) for g > 1
  p.gamma = 1 / g;
  apply_augment(src, out, p, kNorm);
  EXPECT_GT(mean_intensity(out), before + 0.003);
}

TEST(Augment, ContrastExtremesScaleTheSpreadAboutTheMean) {
  const Sample src = phantom_sample(64, 1);
  const double mean = mean_intensity(src), spread = std_intensity(src);
  Sample out;
  AugmentParams p;
  p.contrast = 1.1;
  apply_augment(src, out, p, kNorm);
  EXPECT_GT(std_intensity(out), spread * 1.05);
  EXPECT_NEAR(mean_intensity(out), mean, 0.01);  // the pivot is the mean (up to clipping)
  p.contrast = 1 / 1.1;
  apply_augment(src, out, p, kNorm);
  EXPECT_LT(std_intensity(out), spread * 0.95);
  EXPECT_NEAR(mean_intensity(out), mean, 0.01);
}

TEST(Augment, SpeckleIsMultiplicativeAndZeroMean) {
  const Sample src = square_sample(64, 1, cv::Rect(0, 0, 32, 64), 0.5f);  // left half grey
  AugmentParams p;
  p.speckle = 0.2;
  p.noise_seed = 3;
  Sample out;
  apply_augment(src, out, p, kNorm);
  const size_t side = 64;
  double sum = 0, sq = 0;
  for (size_t y = 0; y < side; ++y)
    for (size_t x = 0; x < side; ++x) {
      const double v = intensity(out.image[y * side + x]);
      if (x >= 32) {
        ASSERT_EQ(v, 0.0);  // black stays black: the noise multiplies
      } else {
        sum += v;
        sq += v * v;
      }
    }
  const double n = 32.0 * 64, mean = sum / n, sd = std::sqrt(sq / n - mean * mean);
  EXPECT_NEAR(mean, 0.5, 0.01);
  EXPECT_NEAR(sd, 0.5 * 0.2, 0.01);
}

TEST(Augment, DrawnPhotometricValuesMoveTheMeanTheirWay) {
  // Ties the draws to their effect: a drawn brightness offset moves the mean by its sign.
  const Sample src = phantom_sample(64, 1);
  const double before = mean_intensity(src);
  AugmentConfig cfg = all_off();
  cfg.brightness = 0.2;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const double b = draw_augment_params(cfg, seed).brightness;
    if (std::abs(b) < 0.02) continue;
    Sample out;
    augment(src, out, cfg, seed, kNorm);
    EXPECT_EQ(mean_intensity(out) > before, b > 0) << "seed " << seed << " brightness " << b;
  }
}

TEST(Augment, RejectsBadConfigAndShapes) {
  AugmentConfig cfg;
  cfg.flip_h = 1.5;
  EXPECT_THROW(draw_augment_params(cfg, 0), std::invalid_argument);
  cfg = AugmentConfig{};
  cfg.rotate_deg = -1;
  EXPECT_THROW(draw_augment_params(cfg, 0), std::invalid_argument);
  cfg = AugmentConfig{};
  cfg.speckle = std::nan("");
  EXPECT_THROW(draw_augment_params(cfg, 0), std::invalid_argument);

  Sample bad = phantom_sample(16, 1);
  bad.image.pop_back();
  Sample out;
  EXPECT_THROW(augment(bad, out, AugmentConfig{}, 0, kNorm), std::invalid_argument);
  bad = phantom_sample(16, 1);
  bad.mask.pop_back();
  EXPECT_THROW(augment(bad, out, AugmentConfig{}, 0, kNorm), std::invalid_argument);
}

TEST(Augment, ReadsSettingsFromConfig) {
  Config config;
  const AugmentConfig defaults;
  const AugmentConfig read = augment_config(config);
  EXPECT_EQ(read.enabled, defaults.enabled);
  EXPECT_EQ(read.flip_h, defaults.flip_h);
  EXPECT_EQ(read.rotate_deg, defaults.rotate_deg);
  EXPECT_EQ(read.scale, defaults.scale);
  EXPECT_EQ(read.translate, defaults.translate);
  EXPECT_EQ(read.brightness, defaults.brightness);
  EXPECT_EQ(read.contrast, defaults.contrast);
  EXPECT_EQ(read.gamma, defaults.gamma);
  EXPECT_EQ(read.speckle, defaults.speckle);
  config.set_from_assignment("augment.rotate_deg=25");
  config.set_from_assignment("augment.enabled=false");
  EXPECT_EQ(augment_config(config).rotate_deg, 25);
  EXPECT_FALSE(augment_config(config).enabled);
  config.set_from_assignment("augment.flip_h=2");
  EXPECT_THROW(augment_config(config), GraphError);
}

}  // namespace
}  // namespace emt
