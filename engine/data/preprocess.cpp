#include "engine/data/preprocess.h"

#include <algorithm>
#include <array>
#include <opencv2/imgproc.hpp>
#include <stdexcept>
#include <string>

namespace emt {

cv::Mat pad_to_square(const cv::Mat& src, int border_value) {
  if (src.empty()) throw std::invalid_argument("pad_to_square: empty image");
  const int side = std::max(src.rows, src.cols);
  const int top = (side - src.rows) / 2;
  const int left = (side - src.cols) / 2;
  cv::Mat square;
  cv::copyMakeBorder(src, square, top, side - src.rows - top, left, side - src.cols - left,
                     cv::BORDER_CONSTANT, cv::Scalar::all(border_value));
  return square;
}

Sample preprocess(const RawSample& raw, int input_size, int channels, const Normalization& norm) {
  if (raw.image.empty() || raw.image.type() != CV_8UC1) {
    throw std::invalid_argument(raw.id + ": image must be 8-bit grey (CV_8UC1)");
  }
  if (raw.mask.type() != CV_8UC1 || raw.mask.size() != raw.image.size()) {
    throw std::invalid_argument(raw.id + ": mask must be 8-bit grey and the image's size");
  }
  if (input_size <= 0 || channels <= 0 || !(norm.std > 0)) {
    throw std::invalid_argument("preprocess needs input_size > 0, channels > 0, norm.std > 0");
  }
  const cv::Size size(input_size, input_size);
  cv::Mat image, mask;
  cv::resize(pad_to_square(raw.image), image, size, 0, 0, cv::INTER_AREA);
  // INTER_NEAREST samples at floor(x * scale), shifting the mask up to a source pixel against the
  // area-averaged image; the EXACT variant samples at pixel centres, as INTER_AREA does.
  cv::resize(pad_to_square(raw.mask), mask, size, 0, 0, cv::INTER_NEAREST_EXACT);

  std::array<float, 256> normalized;
  for (int p = 0; p < 256; ++p) normalized[p] = (p / 255.0f - norm.mean) / norm.std;
  Sample sample{raw.id, std::vector<float>(static_cast<size_t>(channels) * image.total()),
                std::vector<float>(mask.total()), raw.label};
  const auto plane = std::transform(image.begin<uint8_t>(), image.end<uint8_t>(),
                                    sample.image.begin(), [&](uint8_t p) { return normalized[p]; });
  for (auto dst = plane; dst != sample.image.end(); dst += static_cast<ptrdiff_t>(image.total())) {
    std::copy(sample.image.begin(), plane, dst);
  }
  std::transform(mask.begin<uint8_t>(), mask.end<uint8_t>(), sample.mask.begin(),
                 [](uint8_t p) { return p ? 1.0f : 0.0f; });
  return sample;
}

cv::Mat restore_mask(std::span<const float> probs, int input_size, cv::Size original,
                     float threshold) {
  if (input_size <= 0 || static_cast<int64_t>(probs.size()) != int64_t{input_size} * input_size ||
      original.width <= 0 || original.height <= 0)
    throw std::invalid_argument("restore_mask: " + std::to_string(probs.size()) +
                                " probabilities for input size " + std::to_string(input_size) +
                                " and an image of " + std::to_string(original.width) + "x" +
                                std::to_string(original.height));
  const int side = std::max(original.width, original.height);
  const cv::Mat small(input_size, input_size, CV_32F, const_cast<float*>(probs.data()));
  cv::Mat square;
  cv::resize(small, square, cv::Size(side, side), 0, 0, cv::INTER_LINEAR);
  // The same offsets as pad_to_square.
  const cv::Rect image_area((side - original.width) / 2, (side - original.height) / 2,
                            original.width, original.height);
  cv::Mat mask;
  cv::compare(square(image_area), threshold, mask, cv::CMP_GE);
  return mask;
}

Normalization normalization(const Config& config) {
  return {static_cast<float>(config.get_float("data.norm_mean")),
          static_cast<float>(config.get_float("data.norm_std"))};
}

int input_size(const Config& config) { return static_cast<int>(config.get_int("data.input_size")); }

}  // namespace emt
