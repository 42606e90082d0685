// The desktop engine's image geometry (engine/data/preprocess.h) without OpenCV, for a phone app
// that feeds camera or gallery images to the runtime and draws the predicted mask back on them.
// Both functions reproduce what the engine's OpenCV calls compute, bit for bit where integer
// arithmetic decides and to float rounding elsewhere, so that a model sees on the phone the very
// inputs it was trained and evaluated on:
// - preprocess_grey: pad_to_square (zeros, centred), cv::resize INTER_AREA on uint8 (area
//   averaging when shrinking, OpenCV's INTER_AREA bilinear variant when enlarging, a copy at the
//   same size), then (p / 255 - mean) / std replicated into every channel plane;
// - restore_mask: cv::resize INTER_LINEAR of the float map to the padded square, the padding
//   cropped off, and cv::compare(>= threshold).
// Neither allocates: the padding is virtual (pixels outside the image read as 0) and every
// resampling weight is computed where it is used.
#pragma once

#include <cstdint>

namespace emt::mobile {

// An 8-bit grey image in the caller's memory; row_stride is in bytes (>= width), so that a
// camera frame's luma plane can be passed as it is.
struct GreyImage {
  const uint8_t* pixels = nullptr;
  int width = 0, height = 0;
  int64_t row_stride = 0;
};

// Writes channels x input_size x input_size floats to out: the network input for image, equal to
// emt::preprocess(...).image with Normalization{mean, std}. Throws std::invalid_argument for an
// empty image, a stride below the width, input_size < 1, channels < 1 or std <= 0.
void preprocess_grey(const GreyImage& image, int input_size, int channels, float mean, float std,
                     float* out);

// Maps the input_size x input_size probabilities a model predicted for an image of width x height
// back onto that image: mask (width * height bytes, row stride width) gets 255 where the
// probability interpolated there is >= threshold and 0 elsewhere, as emt::restore_mask does.
// Throws std::invalid_argument for input_size < 1 or an empty image size.
void restore_mask(const float* probs, int input_size, int width, int height, float threshold,
                  uint8_t* mask);

}  // namespace emt::mobile
