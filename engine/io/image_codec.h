// Image files in and out (PNG, JPEG, BMP, 16-bit PNG, ...) through OpenCV's imgcodecs, which the
// engine loads only when it first reads or writes an image file. Debian's imgcodecs links GDAL
// and some sixty libraries behind it, whose loading alone costs 52 MB of resident memory: a
// process that never touches an image file (inference on tensors, `engine bench`) should not
// pay it.
#pragma once

#include <filesystem>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "engine/io/image_limits.h"

namespace emt {

// The image in `bytes` with its channels and depth as stored (cv::IMREAD_UNCHANGED); an empty
// Mat when the decoder cannot read it. Its header is read first: ImageRefused, with nothing
// decoded, for a file that is no PNG, JPEG or BMP, has a broken header, or exceeds `limits`.
// Throws std::runtime_error when the codec module cannot be loaded, or with OpenCV's message
// when decoding fails inside it.
cv::Mat decode_image(const std::string& bytes, const ImageLimits& limits);

// The image as PNG file bytes; throws std::runtime_error when it cannot be encoded.
std::vector<unsigned char> encode_png(const cv::Mat& image);

// PNG-encodes image and writes it with write_file_atomic. Throws std::runtime_error naming the
// path when encoding or writing fails.
void write_png(const std::filesystem::path& path, const cv::Mat& image);

}  // namespace emt
