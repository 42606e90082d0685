#include "engine/data/augment.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>
#include <opencv2/imgproc.hpp>
#include <stdexcept>
#include <string>

#include "engine/dsl/config.h"
#include "engine/ir/source_loc.h"

namespace emt {
namespace {

constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ull;

// The splitmix64 finaliser: a bijection that scatters nearby inputs across all 64 bits.
uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// splitmix64 with the conversions spelled out, so the draws are the same on every platform and
// standard library (std:: distributions are implementation-defined).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() { return mix64(state_ += kGolden); }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double symmetric() { return 2 * uniform() - 1; }                            // [-1, 1)

 private:
  uint64_t state_;
};

// Zero mean, unit variance, close to normal: the sum of four 16-bit uniforms, centred and scaled.
// Counter-based (a hash of seed and pixel index), so every channel sees the same field.
float unit_noise(uint64_t seed, uint64_t index) {
  const uint64_t h = mix64(seed + index * kGolden);
  const uint32_t sum =
      static_cast<uint32_t>((h & 0xffff) + ((h >> 16) & 0xffff) + ((h >> 32) & 0xffff) + (h >> 48));
  // Each chunk is (k + 0.5) / 65536, uniform on (0, 1) with mean 1/2 and variance 1/12.
  constexpr float kScale = 1.7320508f / 65536.0f;  // sqrt(3): the sum of four has variance 1/3
  return (static_cast<float>(sum) + 2.0f - 131072.0f) * kScale;
}

void check_magnitude(double value, const char* name) {
  if (!(value >= 0) || !std::isfinite(value))
    throw std::invalid_argument(std::string("augment.") + name +
                                " must be a finite magnitude >= 0, got " + std::to_string(value));
}

// A log-uniform factor in [1/(1+m), 1+m].
double factor(Rng& rng, double magnitude) {
  const double u = rng.symmetric();
  return magnitude == 0 ? 1.0 : std::exp(u * std::log1p(magnitude));
}

bool is_geometric_identity(const AugmentParams& p) {
  return p.rotate_deg == 0 && p.scale == 1 && p.shift_x == 0 && p.shift_y == 0;
}

// The forward 2x3 matrix (src -> dst pixel centres): mirror, then rotate and scale about the
// centre, then shift.
cv::Matx23d affine_matrix(const AugmentParams& p, int side) {
  const double c = (side - 1) / 2.0;
  const double theta = p.rotate_deg * std::numbers::pi / 180.0;
  const double a = p.scale * std::cos(theta);
  const double b = p.scale * std::sin(theta);
  // getRotationMatrix2D's form: positive angles turn counter-clockwise on screen.
  cv::Matx33d rs(a, b, (1 - a) * c - b * c + p.shift_x * side,   //
                 -b, a, b * c + (1 - a) * c + p.shift_y * side,  //
                 0, 0, 1);
  const cv::Matx33d flip =
      p.flip_h ? cv::Matx33d(-1, 0, side - 1, 0, 1, 0, 0, 0, 1) : cv::Matx33d::eye();
  const cv::Matx33d m = rs * flip;
  return cv::Matx23d(m(0, 0), m(0, 1), m(0, 2), m(1, 0), m(1, 1), m(1, 2));
}

cv::Mat plane_of(std::vector<float>& data, int side, int index) {
  return cv::Mat(side, side, CV_32F, data.data() + static_cast<ptrdiff_t>(index) * side * side);
}

cv::Mat plane_of(const std::vector<float>& data, int side, int index) {
  return plane_of(const_cast<std::vector<float>&>(data), side, index);
}

// Moves plane `src` to `dst` (distinct buffers) through the warp.
void warp_plane(const cv::Mat& src, cv::Mat& dst, const AugmentParams& p, const cv::Matx23d& m,
                int interpolation, float border) {
  if (is_geometric_identity(p)) {
    if (p.flip_h) {
      cv::flip(src, dst, 1);  // exact, and cheaper than the general warp
    } else {
      src.copyTo(dst);
    }
    return;
  }
  cv::warpAffine(src, dst, m, dst.size(), interpolation, cv::BORDER_CONSTANT,
                 cv::Scalar::all(border));
}

bool is_photometric_identity(const AugmentParams& p) {
  return p.brightness == 0 && p.contrast == 1 && p.gamma == 1 && p.speckle == 0;
}

// Contrast and brightness, gamma, speckle on the de-normalised [0, 1] intensity of `planes`
// consecutive planes, in place.
void photometric(float* data, int64_t plane_size, int planes, const AugmentParams& p,
                 const Normalization& norm) {
  const int64_t n = plane_size * planes;
  const float nstd = norm.std, nmean = norm.mean;
  float pivot = 0;
  if (p.contrast != 1) {
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += data[i];
    pivot = static_cast<float>(sum / static_cast<double>(n)) * nstd + nmean;
  }
  const float contrast = static_cast<float>(p.contrast);
  const float brightness = static_cast<float>(p.brightness);
  const float gamma = static_cast<float>(p.gamma);
  const float speckle = static_cast<float>(p.speckle);
  const bool linear = p.contrast != 1 || p.brightness != 0;
  for (int c = 0; c < planes; ++c) {
    float* v = data + static_cast<ptrdiff_t>(c) * plane_size;
    for (int64_t i = 0; i < plane_size; ++i) {
      float x = std::clamp(v[i] * nstd + nmean, 0.0f, 1.0f);
      if (linear) x = std::clamp((x - pivot) * contrast + pivot + brightness, 0.0f, 1.0f);
      if (p.gamma != 1) x = std::pow(x, gamma);
      if (p.speckle != 0)
        x = std::clamp(x * (1.0f + speckle * unit_noise(p.noise_seed, static_cast<uint64_t>(i))),
                       0.0f, 1.0f);
      v[i] = (x - nmean) / nstd;
    }
  }
}

// True when every plane holds the same values as the first (a replicated grey image).
bool planes_replicated(const std::vector<float>& image, int64_t plane_size, int planes) {
  const size_t bytes = static_cast<size_t>(plane_size) * sizeof(float);
  for (int c = 1; c < planes; ++c)
    if (std::memcmp(image.data(), image.data() + c * plane_size, bytes) != 0) return false;
  return true;
}

}  // namespace

uint64_t augment_seed(uint64_t train_seed, int64_t epoch, int64_t sample_index) {
  uint64_t h = mix64(train_seed + kGolden);
  h = mix64(h ^ (static_cast<uint64_t>(epoch) + 2 * kGolden));
  return mix64(h ^ (static_cast<uint64_t>(sample_index) + 3 * kGolden));
}

AugmentParams draw_augment_params(const AugmentConfig& config, uint64_t seed) {
  if (!(config.flip_h >= 0 && config.flip_h <= 1))
    throw std::invalid_argument("augment.flip_h is a probability in [0, 1], got " +
                                std::to_string(config.flip_h));
  check_magnitude(config.rotate_deg, "rotate_deg");
  check_magnitude(config.scale, "scale");
  check_magnitude(config.translate, "translate");
  check_magnitude(config.brightness, "brightness");
  check_magnitude(config.contrast, "contrast");
  check_magnitude(config.gamma, "gamma");
  check_magnitude(config.speckle, "speckle");

  AugmentParams p;
  if (!config.enabled) return p;
  // Every value is drawn whatever the magnitudes, in a fixed order, so turning one transform off
  // leaves the others' draws unchanged.
  Rng rng(mix64(seed));
  p.flip_h = rng.uniform() < config.flip_h;
  p.rotate_deg = rng.symmetric() * config.rotate_deg;
  p.scale = factor(rng, config.scale);
  p.shift_x = rng.symmetric() * config.translate;
  p.shift_y = rng.symmetric() * config.translate;
  p.brightness = rng.symmetric() * config.brightness;
  p.contrast = factor(rng, config.contrast);
  p.gamma = factor(rng, config.gamma);
  p.speckle = rng.uniform() * config.speckle;
  p.noise_seed = rng.next();
  return p;
}

void apply_augment(const Sample& src, Sample& dst, const AugmentParams& params,
                   const Normalization& norm) {
  const int64_t plane_size = static_cast<int64_t>(src.mask.size());
  const int side = static_cast<int>(std::lround(std::sqrt(static_cast<double>(plane_size))));
  if (plane_size == 0 || static_cast<int64_t>(side) * side != plane_size || src.image.empty() ||
      src.image.size() % static_cast<size_t>(plane_size) != 0)
    throw std::invalid_argument(src.id + ": augment needs an S x S mask and an image of whole " +
                                "S x S planes, got mask " + std::to_string(src.mask.size()) +
                                " and image " + std::to_string(src.image.size()) + " values");
  if (!(norm.std > 0)) throw std::invalid_argument("augment: normalisation std must be > 0");
  const int planes = static_cast<int>(src.image.size() / static_cast<size_t>(plane_size));

  const bool geometric = params.flip_h || !is_geometric_identity(params);
  const bool photo = !is_photometric_identity(params);
  if (geometric && &src == &dst) {  // a warp cannot run in place
    const Sample copy = src;
    apply_augment(copy, dst, params, norm);
    return;
  }
  if (!geometric && &src != &dst) dst = src;
  if (!geometric && !photo) return;

  // A replicated grey image is transformed once and copied: same result, a fraction of the work.
  const bool replicated = planes_replicated(src.image, plane_size, planes);
  const int active = replicated ? 1 : planes;
  if (geometric) {
    dst.id = src.id;
    dst.label = src.label;
    dst.image.resize(src.image.size());
    dst.mask.resize(src.mask.size());
    const cv::Matx23d m = affine_matrix(params, side);
    const float black = (0.0f - norm.mean) / norm.std;
    for (int c = 0; c < active; ++c) {
      cv::Mat out = plane_of(dst.image, side, c);
      warp_plane(plane_of(src.image, side, c), out, params, m, cv::INTER_LINEAR, black);
    }
    cv::Mat mask_out = plane_of(dst.mask, side, 0);
    warp_plane(plane_of(src.mask, side, 0), mask_out, params, m, cv::INTER_NEAREST, 0.0f);
  }
  if (photo) photometric(dst.image.data(), plane_size, active, params, norm);
  for (int c = 1; c < planes && replicated; ++c)
    std::copy_n(dst.image.begin(), plane_size, dst.image.begin() + c * plane_size);
}

void augment(const Sample& src, Sample& dst, const AugmentConfig& config, uint64_t seed,
             const Normalization& norm) {
  const AugmentParams params = draw_augment_params(config, seed);
  if (!config.enabled) {
    if (&src != &dst) dst = src;
    return;
  }
  apply_augment(src, dst, params, norm);
}

AugmentConfig augment_config(const Config& config) {
  AugmentConfig a;
  a.enabled = config.get_bool("augment.enabled");
  const struct {
    const char* key;
    double* value;
  } fields[] = {{"augment.flip_h", &a.flip_h},         {"augment.rotate_deg", &a.rotate_deg},
                {"augment.scale", &a.scale},           {"augment.translate", &a.translate},
                {"augment.brightness", &a.brightness}, {"augment.contrast", &a.contrast},
                {"augment.gamma", &a.gamma},           {"augment.speckle", &a.speckle}};
  for (const auto& f : fields) {
    *f.value = config.get_float(f.key);
    const bool probability = f.value == &a.flip_h;
    const bool ok =
        probability ? *f.value >= 0 && *f.value <= 1 : *f.value >= 0 && std::isfinite(*f.value);
    if (!ok)
      throw GraphError(config.where(f.key),
                       std::string("setting '") + f.key + "' must be " +
                           (probability ? "a probability in [0, 1]" : "a magnitude >= 0") +
                           ", got " + std::to_string(*f.value));
  }
  return a;
}

}  // namespace emt
