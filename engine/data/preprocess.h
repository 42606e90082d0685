// Turns a decoded sample into network input: square without distortion, fixed size, normalised.
#pragma once

#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "engine/data/phantom.h"

namespace emt {

// Centres src on a square canvas of side max(rows, cols) filled with border_value, so lesion
// shapes keep their aspect ratio when resized.
cv::Mat pad_to_square(const cv::Mat& src, int border_value = 0);

// Applied to pixel / 255.
struct Normalization {
  float mean = 0.5f;
  float std = 0.25f;
};

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

}  // namespace emt
