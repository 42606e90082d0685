// Limits on what one image may cost once decoded, checked against its header (image_header.h)
// before the decoder allocates anything. Each is a [data] setting so that a refusal can say
// which one to raise (read from the settings by data/readers.h image_limits).
#pragma once

#include <cstdint>

#include "engine/io/image_header.h"

namespace emt {

struct ImageLimits {
  // data.max_image_pixels: width x height as decoded.
  int64_t max_pixels = int64_t{1} << 26;
  // data.max_padded_pixels: the max(width, height)^2 square preprocessing pads to, which makes
  // a 200000x1 strip 40 gigapixels.
  int64_t max_padded_pixels = int64_t{1} << 26;
  // data.max_bytes_per_pixel: channels x bytes per channel as decoded (16-bit RGBA is 8).
  int64_t max_bytes_per_pixel = 8;
};

// Throws ImageRefused naming the image's size, the limit it exceeds and the setting that raises
// it, when the header describes an image over one of the limits.
void check_image_limits(const ImageHeader& header, const ImageLimits& limits);

}  // namespace emt
