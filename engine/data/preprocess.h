// Turns a decoded sample into network input: square without distortion, fixed size, normalised.
#pragma once

#include <opencv2/core.hpp>
#include <span>
#include <string>
#include <vector>

#include "engine/data/phantom.h"
#include "engine/dsl/config.h"

namespace emt {

// Centres src on a square canvas of side max(rows, cols) filled with border_value, so lesion
// shapes keep their aspect ratio when resized.
cv::Mat pad_to_square(const cv::Mat& src, int border_value = 0);

// Applied to pixel / 255.
struct Normalization {
  float mean = 0.5f;
  float std = 0.25f;
};

// The settings' data.norm_mean and data.norm_std: the one place they are read.
Normalization normalization(const Config& config);
// data.input_size, the network's square input side in pixels.
int input_size(const Config& config);

struct Sample {
  std::string id;
  std::vector<float> image;  // channels x S x S, normalised
  std::vector<float> mask;   // S x S, values in {0, 1}
  int label = 0;
};

// Pads image and mask to square, resizes to input_size (area averaging for the image, nearest
// for the mask so it stays binary), and replicates the grey image into `channels` planes.
// Throws std::invalid_argument for a non-grey image, a mask of another size, or bad sizes.
Sample preprocess(const RawSample& raw, int input_size, int channels, const Normalization& norm);

// The inverse of preprocess's geometry for a predicted mask: the input_size x input_size
// probabilities resized (bilinear) to the padded square of an image of size `original`, the
// padding cropped off, and pixels >= threshold set to 255 (the rest 0), so that the mask lines up
// with the image it was predicted from. Throws std::invalid_argument for bad sizes.
cv::Mat restore_mask(std::span<const float> probs, int input_size, cv::Size original,
                     float threshold = 0.5f);

}  // namespace emt
