// Training-time augmentation of preprocessed samples: one random affine warp applied identically
// to image and mask, then photometric changes to the image only. Every random choice comes from
// the seed alone, so a sample's augmentation does not depend on thread scheduling and a resumed
// run replays it exactly. Evaluation never augments.
#pragma once

#include <cstdint>

#include "engine/data/preprocess.h"

namespace emt {

class Config;

// Probabilities and maximum magnitudes; each sample draws its own values uniformly within them.
// Multiplicative factors (scale, contrast, gamma) are drawn log-uniformly in [1/(1+m), 1+m], so a
// magnitude m shrinks as often and as far (in ratio) as it grows. A magnitude of 0 turns the
// transform off.
struct AugmentConfig {
  double flip_h = 0.5;      // probability of a horizontal (left-right) mirror
  double rotate_deg = 10;   // max |rotation| in degrees about the image centre
  double scale = 0.1;       // max zoom: factor in [1/(1+scale), 1+scale] about the centre
  double translate = 0.05;  // max shift along each axis, as a fraction of the image side
  double brightness = 0.1;  // max |offset| added to the [0,1] intensity
  double contrast = 0.1;    // max contrast change: factor in [1/(1+c), 1+c] about the mean
  double gamma = 0.1;       // max gamma change: exponent in [1/(1+g), 1+g] (> 1 darkens)
  double speckle = 0.05;    // max std of the per-pixel multiplicative noise 1 + std * n
  bool enabled = true;      // false: augment() copies the sample unchanged
};

// The values one sample drew. Identity by default.
struct AugmentParams {
  bool flip_h = false;
  double rotate_deg = 0;    // counter-clockwise as displayed (y pointing down)
  double scale = 1;         // > 1 zooms in
  double shift_x = 0;       // fraction of the side; > 0 moves content right
  double shift_y = 0;       // fraction of the side; > 0 moves content down
  double brightness = 0;    // added to the [0,1] intensity
  double contrast = 1;      // (x - mean) * contrast + mean, mean over the warped image
  double gamma = 1;         // x^gamma on the [0,1] intensity
  double speckle = 0;       // std of the noise: intensity * (1 + speckle * n), n zero-mean,
                            // unit variance, near-normal (sum of 4 uniforms), |n| < 3.47
  uint64_t noise_seed = 0;  // picks the noise field; one field shared by all channels
};

// The seed the trainer passes for one sample of one epoch: a well-mixed hash of the three, so
// neighbouring epochs and indices give unrelated augmentations.
uint64_t augment_seed(uint64_t train_seed, int64_t epoch, int64_t sample_index);

// Draws every parameter from a generator seeded only by `seed` (portable: no std distributions).
// Throws std::invalid_argument for a negative magnitude or flip_h outside [0, 1].
AugmentParams draw_augment_params(const AugmentConfig& config, uint64_t seed);

// Applies params to src (image channels x S x S normalised with norm, mask S x S in {0, 1}):
// one affine warp (flip, rotation and scale about the centre, shift) with bilinear sampling for
// the image and nearest for the mask, outside pixels becoming black (pixel 0) and background 0;
// then on the de-normalised image clamped to [0, 1]: contrast and brightness, gamma, and speckle.
// Every channel gets the same transform and noise. Identity steps are skipped, so identity params
// reproduce src bit for bit. dst may be src; its buffers are reused when their sizes match.
// Throws std::invalid_argument if the image is not a whole number of S x S planes.
void apply_augment(const Sample& src, Sample& dst, const AugmentParams& params,
                   const Normalization& norm);

// apply_augment(src, dst, draw_augment_params(config, seed), norm), or a copy when disabled.
void augment(const Sample& src, Sample& dst, const AugmentConfig& config, uint64_t seed,
             const Normalization& norm);

// Reads the [augment] settings; a bad value is a GraphError pointing at where it was set.
AugmentConfig augment_config(const Config& config);

}  // namespace emt
