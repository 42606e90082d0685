// What an image file will decode to, read from its header alone: a few dozen bytes tell the size
// of an allocation that can reach gigabytes (a 274-byte PNG can claim 200000x1 pixels, a 7 MB one
// 30000x30000 16-bit RGBA), so limits are checked before any decoder runs.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace emt {

// A file refused before decoding: no known image header, a header that is cut short or
// inconsistent, or (image_limits.h) an image over a limit.
class ImageRefused : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ImageHeader {
  const char* format = "";  // "PNG", "JPEG" or "BMP"
  int64_t width = 0;
  int64_t height = 0;
  // As OpenCV's imdecode(IMREAD_UNCHANGED) returns them: exact for PNG (grey 1, RGB 3, and 4
  // for grey+alpha, RGBA, or RGB/palette with a tRNS chunk) and JPEG (grey 1, else 3); for BMP
  // an upper bound (palette images count 3 though a grey palette decodes to 1 channel).
  int channels = 0;
  int bytes_per_channel = 1;  // 2 for 16-bit PNG (and 12-bit JPEG), else 1

  int64_t bytes_per_pixel() const { return int64_t{channels} * bytes_per_channel; }
};

// The header of the PNG (IHDR, and tRNS before the first IDAT), JPEG (first SOFn frame header)
// or BMP (BITMAPCOREHEADER or BITMAPINFOHEADER and later) in `bytes`. Every read is bounds
// checked; throws ImageRefused saying what is wrong (unknown signature, truncated header, zero
// or negative size, unsupported bit depth) and at which byte.
ImageHeader read_image_header(std::string_view bytes);

}  // namespace emt
