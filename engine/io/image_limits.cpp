#include "engine/io/image_limits.h"

#include <algorithm>
#include <string>

namespace emt {
namespace {

[[noreturn]] void refuse(const std::string& what, int64_t limit, const char* key) {
  throw ImageRefused(what + ", over the limit " + key + " = " + std::to_string(limit) +
                     "; not decoded (raise it with --set " + key + "=N)");
}

}  // namespace

void check_image_limits(const ImageHeader& header, const ImageLimits& limits) {
  // Sides come from 32-bit header fields, so these products cannot overflow 64 bits.
  const std::string size =
      std::to_string(header.width) + "x" + std::to_string(header.height) + " " + header.format;
  const int64_t pixels = header.width * header.height;
  if (pixels > limits.max_pixels)
    refuse(size + " has " + std::to_string(pixels) + " pixels", limits.max_pixels,
           "data.max_image_pixels");
  const int64_t side = std::max(header.width, header.height);
  if (side * side > limits.max_padded_pixels)
    refuse(size + " pads to a " + std::to_string(side) + "x" + std::to_string(side) +
               " square of " + std::to_string(side * side) + " pixels",
           limits.max_padded_pixels, "data.max_padded_pixels");
  if (header.bytes_per_pixel() > limits.max_bytes_per_pixel)
    refuse(size + " decodes to " + std::to_string(header.bytes_per_pixel()) + " bytes per pixel (" +
               std::to_string(header.channels) + " channels of " +
               std::to_string(8 * header.bytes_per_channel) + " bits)",
           limits.max_bytes_per_pixel, "data.max_bytes_per_pixel");
}

}  // namespace emt
