#include "engine/data/phantom.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numbers>
#include <opencv2/imgproc.hpp>
#include <random>
#include <stdexcept>

#include "engine/io/atomic_file.h"
#include "engine/io/image_codec.h"
#include "ops/core/parallel.h"

namespace emt {
namespace {

constexpr double kTwoPi = 2 * std::numbers::pi;
// Enough vertices that the narrowest spicule spans several of them.
constexpr int kOutlineSteps = 720;
constexpr int kMaxLayerSway = 8;

// Draws from raw std::mt19937_64 bits rather than std::*_distribution, whose algorithms each
// standard library chooses for itself: a seed must name the same phantom everywhere.
class Rng {
 public:
  // std::seed_seq's mixing is fully specified, so neighbouring keys give unrelated streams.
  Rng(uint64_t seed, uint64_t stream) {
    std::seed_seq seq{seed & 0xffffffffu, seed >> 32, stream & 0xffffffffu, stream >> 32};
    gen_.seed(seq);
  }
  uint64_t bits() { return gen_(); }
  double uniform() { return static_cast<double>(gen_() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Inclusive of both ends.
  int uniform_int(int lo, int hi) { return lo + static_cast<int>(uniform() * (hi - lo + 1)); }

 private:
  std::mt19937_64 gen_;
};

// One step of the SplitMix64 generator: a cheap, well-mixed hash of the seed.
uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15u;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
  return x ^ (x >> 31);
}

void validate(const PhantomConfig& cfg, int index = 0) {
  if (index < 0) throw std::invalid_argument("phantom index must be >= 0");
  if (cfg.count < 0) throw std::invalid_argument("phantom count must be >= 0");
  if (cfg.min_side < 64 || cfg.max_side < cfg.min_side) {
    throw std::invalid_argument("phantom sides need 64 <= min_side <= max_side, got " +
                                std::to_string(cfg.min_side) + ".." + std::to_string(cfg.max_side));
  }
  if (!(cfg.malignant_fraction >= 0 && cfg.malignant_fraction <= 1)) {
    throw std::invalid_argument("phantom malignant_fraction must lie in [0, 1]");
  }
}

double angle_of_step(int i) { return kTwoPi * i / kOutlineSteps; }

// Benign masses are mostly circumscribed ovals, wider than tall (parallel to the skin).
std::vector<double> benign_outline(Rng& rng, double radius) {
  const double aspect = rng.uniform(1.0, 1.5);
  const double a = radius * std::sqrt(aspect), b = radius / std::sqrt(aspect);
  const double tilt = rng.uniform(-0.6, 0.6);
  std::vector<double> r(kOutlineSteps);
  for (int i = 0; i < kOutlineSteps; ++i) {
    const double phi = angle_of_step(i) - tilt;
    r[i] = a * b / std::hypot(b * std::cos(phi), a * std::sin(phi));
  }
  return r;
}

// Malignant masses infiltrate their surroundings: a lobulated, irregular body (low harmonics)
// with sharp spicules radiating out of it.
std::vector<double> malignant_outline(Rng& rng, double radius) {
  std::vector<double> r(kOutlineSteps, radius);
  for (int k = 2; k <= 6; ++k) {
    const double amplitude = rng.uniform(0.03, 0.12) * radius;
    const double phase = rng.uniform(0, kTwoPi);
    for (int i = 0; i < kOutlineSteps; ++i) {
      r[i] += amplitude * std::cos(k * angle_of_step(i) + phase);
    }
  }
  const int spicules = rng.uniform_int(5, 10);
  for (int s = 0; s < spicules; ++s) {
    const double centre = rng.uniform(0, kTwoPi);
    const double half_width = rng.uniform(0.1, 0.22);
    const double length = rng.uniform(0.35, 0.8) * radius;
    for (int i = 0; i < kOutlineSteps; ++i) {
      const double d = std::abs(std::remainder(angle_of_step(i) - centre, kTwoPi));
      if (d < half_width) r[i] += length * (1 - d / half_width);
    }
  }
  for (double& v : r) v = std::max(v, 0.4 * radius);
  return r;
}

double uniform_or_middle(Rng& rng, double lo, double hi) {
  return hi > lo ? rng.uniform(lo, hi) : (lo + hi) / 2;
}

// Places the outline below the skin and fat layers, leaving room beneath it for the posterior
// features, and rasterises it: the mask is exactly the lesion.
cv::Mat place_lesion(Rng& rng, const std::vector<double>& radii, int width, int height) {
  std::vector<cv::Point2d> offsets(kOutlineSteps);
  cv::Point2d lo(0, 0), hi(0, 0);
  for (int i = 0; i < kOutlineSteps; ++i) {
    offsets[i] = {radii[i] * std::cos(angle_of_step(i)), radii[i] * std::sin(angle_of_step(i))};
    lo = {std::min(lo.x, offsets[i].x), std::min(lo.y, offsets[i].y)};
    hi = {std::max(hi.x, offsets[i].x), std::max(hi.y, offsets[i].y)};
  }
  const double cx = uniform_or_middle(rng, 0.05 * width - lo.x, 0.95 * width - hi.x);
  const double cy = uniform_or_middle(rng, 0.12 * height - lo.y, 0.78 * height - hi.y);
  // Sub-pixel vertices (4 fractional bits) keep small outlines faithful.
  constexpr int kShift = 4;
  std::vector<cv::Point> polygon(kOutlineSteps);
  for (int i = 0; i < kOutlineSteps; ++i) {
    polygon[i] = {static_cast<int>(std::lround((cx + offsets[i].x) * (1 << kShift))),
                  static_cast<int>(std::lround((cy + offsets[i].y) * (1 << kShift)))};
  }
  cv::Mat mask = cv::Mat::zeros(height, width, CV_8UC1);
  cv::fillPoly(mask, std::vector<std::vector<cv::Point>>{polygon}, cv::Scalar(255), cv::LINE_8,
               kShift);
  return mask;
}

// Mean echo strength of the tissue: a bright skin line over 3-5 layers (fat, glandular tissue,
// muscle) whose boundaries sway gently, patchy glandular texture, and depth attenuation.
cv::Mat tissue_echogenicity(Rng& rng, int width, int height) {
  const int layers = rng.uniform_int(3, 5);
  std::vector<double> bounds{rng.uniform(0.02, 0.05) * height};
  std::vector<double> levels{rng.uniform(0.85, 1.0)};
  for (int k = 0; k < layers; ++k) {
    bounds.push_back(rng.uniform(bounds.front(), height));
    levels.push_back(rng.uniform(0.35, 0.8));
  }
  std::sort(bounds.begin() + 1, bounds.end());
  const double softness = rng.uniform(2.0, 6.0);
  std::vector<float> profile(height + 2 * kMaxLayerSway);
  for (size_t d = 0; d < profile.size(); ++d) {
    const double depth = static_cast<double>(d) - kMaxLayerSway;
    double level = levels[0];
    for (size_t k = 0; k + 1 < levels.size(); ++k) {
      level += (levels[k + 1] - levels[k]) / (1 + std::exp((bounds[k] - depth) / softness));
    }
    profile[d] = static_cast<float>(level);
  }

  const double sway_amplitude = rng.uniform(1.0, kMaxLayerSway);
  const double sway_period = rng.uniform(0.4, 1.5) * width;
  const double sway_phase = rng.uniform(0, kTwoPi);
  std::vector<int> sway(width);
  for (int x = 0; x < width; ++x) {
    sway[x] = kMaxLayerSway +
              static_cast<int>(
                  std::lround(sway_amplitude * std::sin(kTwoPi * x / sway_period + sway_phase)));
  }

  cv::Mat patches(rng.uniform_int(3, 6), rng.uniform_int(4, 8), CV_32F);
  for (float& v : cv::Mat_<float>(patches)) v = static_cast<float>(rng.uniform(0.8, 1.2));
  cv::Mat echo;
  cv::resize(patches, echo, cv::Size(width, height), 0, 0, cv::INTER_CUBIC);

  const double attenuation = rng.uniform(0.2, 0.7);
  for (int y = 0; y < height; ++y) {
    float* row = echo.ptr<float>(y);
    const float depth_gain = static_cast<float>(std::exp(-attenuation * y / height));
    for (int x = 0; x < width; ++x) row[x] *= profile[y + sway[x]] * depth_gain;
  }
  return echo;
}

// The lesion attenuates sound more (shadow) or less (enhancement) than tissue, so every echo
// below it is scaled by exp(-kappa * lesion path above). `strength` is the log-scale at the
// thickest column: positive darkens, negative brightens.
void apply_posterior_attenuation(cv::Mat& echo, const cv::Mat& lesion_weight, double strength) {
  cv::Mat thickness;
  cv::reduce(lesion_weight, thickness, 0, cv::REDUCE_SUM, CV_32F);
  double max_thickness = 0;
  cv::minMaxLoc(thickness, nullptr, &max_thickness);
  if (max_thickness <= 0) return;
  const double kappa = strength / max_thickness;
  std::vector<float> gain(echo.cols, 1.0f);
  for (int y = 0; y < echo.rows; ++y) {
    const float* w = lesion_weight.ptr<float>(y);
    float* row = echo.ptr<float>(y);
    for (int x = 0; x < echo.cols; ++x) {
      if (w[x] > 0) gain[x] *= static_cast<float>(std::exp(-kappa * w[x]));
      row[x] *= gain[x];
    }
  }
}

// Fully developed speckle: the envelope of a complex Gaussian field blurred by the point spread
// function (wider laterally than axially) is Rayleigh distributed. After the blur any zero-mean
// i.i.d. input is Gaussian (central limit), so cheap uniforms stand in for normal draws.
cv::Mat speckle(Rng& rng, int width, int height) {
  cv::Mat re(height, width, CV_32F), im(height, width, CV_32F);
  auto to_unit = [](uint64_t bits24) { return static_cast<float>(bits24) * 0x1.0p-23f - 1.0f; };
  for (int y = 0; y < height; ++y) {
    float* pr = re.ptr<float>(y);
    float* pi = im.ptr<float>(y);
    for (int x = 0; x < width; ++x) {
      const uint64_t bits = rng.bits();
      pr[x] = to_unit(bits >> 40);
      pi[x] = to_unit((bits >> 8) & 0xffffff);
    }
  }
  const double sigma_x = rng.uniform(1.2, 2.0), sigma_y = rng.uniform(0.6, 1.0);
  cv::GaussianBlur(re, re, cv::Size(), sigma_x, sigma_y, cv::BORDER_REFLECT);
  cv::GaussianBlur(im, im, cv::Size(), sigma_x, sigma_y, cv::BORDER_REFLECT);
  cv::Mat envelope;
  cv::magnitude(re, im, envelope);
  return envelope / cv::mean(envelope)[0];
}

std::string phantom_id(int index) {
  char id[32];
  std::snprintf(id, sizeof id, "phantom_%05d", index);
  return id;
}

}  // namespace

// A randomly shifted golden-ratio (Weyl) sequence rather than coin flips: every prefix of the
// set then holds the configured fraction to within 4 samples, which keeps small test sets and
// short runs balanced.
int phantom_label(const PhantomConfig& cfg, int index) {
  validate(cfg, index);
  const double offset = static_cast<double>(splitmix64(cfg.seed) >> 11) * 0x1.0p-53;
  const double u = std::fmod(offset + index * (std::numbers::phi - 1), 1.0);
  return u < cfg.malignant_fraction ? 1 : 0;
}

RawSample generate_phantom(const PhantomConfig& cfg, int index) {
  validate(cfg, index);
  Rng rng(cfg.seed, static_cast<uint64_t>(index));
  RawSample sample;
  sample.id = phantom_id(index);
  sample.label = phantom_label(cfg, index);
  const int width = rng.uniform_int(cfg.min_side, cfg.max_side);
  const int height = rng.uniform_int(cfg.min_side, cfg.max_side);

  const double radius = rng.uniform(0.15, 0.35) * std::min(width, height) / 2;
  const bool malignant = sample.label == 1;
  const std::vector<double> outline =
      malignant ? malignant_outline(rng, radius) : benign_outline(rng, radius);
  sample.mask = place_lesion(rng, outline, width, height);

  cv::Mat echo = tissue_echogenicity(rng, width, height);
  // The lesion's edge in the image is slightly soft, as the beam blurs it; the mask stays exact.
  cv::Mat lesion_weight;
  sample.mask.convertTo(lesion_weight, CV_32F, 1.0 / 255);
  cv::GaussianBlur(lesion_weight, lesion_weight, cv::Size(), 1.0);
  // Malignant masses are markedly hypo-echoic; benign ones less so. With the posterior cue below,
  // this makes the classes separable by features that survive global average pooling.
  const double lesion_level = malignant ? rng.uniform(0.05, 0.15) : rng.uniform(0.25, 0.4);
  echo = echo.mul(1 - (1 - lesion_level) * lesion_weight);
  // Malignant masses always shadow and benign (fluid-rich) ones always enhance, so the cue is
  // learnable by design.
  const double posterior = malignant ? rng.uniform(1.2, 2.0) : rng.uniform(-0.5, -0.2);
  apply_posterior_attenuation(echo, lesion_weight, posterior);

  // Scanners log-compress the echo amplitude for display; a power law is close enough and
  // tames the speckle's long bright tail.
  cv::Mat display;
  cv::pow(echo.mul(speckle(rng, width, height)), 0.6, display);
  display.convertTo(sample.image, CV_8U, 0.7 * 255);
  return sample;
}

std::vector<RawSample> generate_phantom_set(const PhantomConfig& cfg) {
  validate(cfg);
  std::vector<RawSample> samples(cfg.count);
  parallel_for(cfg.count, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) samples[i] = generate_phantom(cfg, static_cast<int>(i));
  });
  return samples;
}

void write_phantom_busi_layout(const std::vector<RawSample>& samples,
                               const std::filesystem::path& dir) {
  for (const char* cls : {"benign", "malignant"}) std::filesystem::create_directories(dir / cls);
  for (const RawSample& s : samples) {
    const std::filesystem::path base = dir / (s.label == 1 ? "malignant" : "benign");
    for (const auto& [suffix, image] : {std::pair{".png", &s.image}, {"_mask.png", &s.mask}})
      write_png(base / (s.id + suffix), *image);
  }
}

}  // namespace emt
