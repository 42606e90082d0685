#include "engine/io/image_header.h"

#include <limits>

namespace emt {
namespace {

// Bounds-checked reads of big- and little-endian integers; running past the end is an error
// naming the header and the byte it needed.
class Bytes {
 public:
  Bytes(std::string_view bytes, const char* format) : bytes_(bytes), format_(format) {}

  size_t size() const { return bytes_.size(); }
  uint32_t u8(size_t at) const { return byte(at); }
  uint32_t be16(size_t at) const { return byte(at) << 8 | byte(at + 1); }
  uint32_t be32(size_t at) const { return be16(at) << 16 | be16(at + 2); }
  uint32_t le16(size_t at) const { return byte(at) | byte(at + 1) << 8; }
  uint32_t le32(size_t at) const { return le16(at) | le16(at + 2) << 16; }

  [[noreturn]] void fail(const std::string& what, size_t at) const {
    throw ImageRefused(std::string("bad ") + format_ + " header: " + what + " (byte " +
                       std::to_string(at) + " of " + std::to_string(bytes_.size()) + ")");
  }

 private:
  uint32_t byte(size_t at) const {
    if (at >= bytes_.size()) fail("file ends inside the header", at);
    return static_cast<unsigned char>(bytes_[at]);
  }
  std::string_view bytes_;
  const char* format_;
};

constexpr std::string_view kPngSignature("\x89PNG\r\n\x1a\n", 8);
constexpr uint32_t kPngMaxSide = 0x7FFFFFFF;  // the PNG specification's limit

bool png_depth_valid(uint32_t colour_type, uint32_t depth) {
  switch (colour_type) {
    case 0:  // grey
      return depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16;
    case 3:  // palette
      return depth == 1 || depth == 2 || depth == 4 || depth == 8;
    case 2:  // RGB
    case 4:  // grey + alpha
    case 6:  // RGBA
      return depth == 8 || depth == 16;
    default:
      return false;
  }
}

// libpng (and so OpenCV) reports a tRNS chunk only when it precedes the image data.
bool png_has_trns(const Bytes& in) {
  for (uint64_t at = 33; at + 8 <= in.size();) {
    const uint32_t type = in.be32(static_cast<size_t>(at) + 4);
    if (type == 0x49444154) return false;  // IDAT
    if (type == 0x74524E53) return true;   // tRNS
    at += uint64_t{12} + in.be32(static_cast<size_t>(at));
  }
  return false;
}

ImageHeader read_png(std::string_view bytes) {
  const Bytes in(bytes, "PNG");
  if (in.be32(8) != 13 || in.be32(12) != 0x49484452)
    in.fail("the first chunk is not a 13-byte IHDR", 8);
  ImageHeader h{"PNG", in.be32(16), in.be32(20)};
  const uint32_t depth = in.u8(24);
  const uint32_t colour_type = in.u8(25);
  in.be32(29);  // the IHDR's CRC must be there: a file cut inside it is refused here
  if (h.width == 0 || h.height == 0 || h.width > kPngMaxSide || h.height > kPngMaxSide)
    in.fail("size " + std::to_string(h.width) + "x" + std::to_string(h.height), 16);
  if (!png_depth_valid(colour_type, depth))
    in.fail(
        "bit depth " + std::to_string(depth) + " with colour type " + std::to_string(colour_type),
        24);
  const bool rgb_like = colour_type == 2 || colour_type == 3;
  h.channels = colour_type == 0 ? 1 : (rgb_like && !png_has_trns(in)) ? 3 : 4;
  h.bytes_per_channel = depth == 16 ? 2 : 1;
  return h;
}

// SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC), which share the range.
bool jpeg_frame_marker(uint32_t m) {
  return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
}

ImageHeader read_jpeg(std::string_view bytes) {
  const Bytes in(bytes, "JPEG");
  size_t at = 2;  // past SOI
  for (;;) {
    if (in.u8(at) != 0xFF) in.fail("no marker where one must start", at);
    while (in.u8(at + 1) == 0xFF) ++at;  // fill bytes
    const uint32_t marker = in.u8(at + 1);
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8)) {  // no length field
      at += 2;
      continue;
    }
    if (marker == 0xD9 || marker == 0xDA) in.fail("image data before any frame header", at);
    const uint32_t length = in.be16(at + 2);
    if (length < 2) in.fail("segment length " + std::to_string(length), at + 2);
    if (jpeg_frame_marker(marker)) {
      if (length < 8) in.fail("frame header of " + std::to_string(length) + " bytes", at + 2);
      const uint32_t precision = in.u8(at + 4);
      ImageHeader h{"JPEG", in.be16(at + 7), in.be16(at + 5)};
      const uint32_t components = in.u8(at + 9);
      if (h.height == 0) in.fail("height defined later by a DNL marker (not supported)", at + 5);
      if (h.width == 0) in.fail("width 0", at + 7);
      if (components == 0) in.fail("no colour components", at + 9);
      h.channels = components == 1 ? 1 : 3;
      h.bytes_per_channel = precision > 8 ? 2 : 1;
      return h;
    }
    at += 2 + length;
  }
}

ImageHeader read_bmp(std::string_view bytes) {
  const Bytes in(bytes, "BMP");
  const uint32_t info_size = in.le32(14);
  ImageHeader h{"BMP"};
  int64_t height = 0;
  uint32_t bits = 0;
  if (info_size == 12) {  // BITMAPCOREHEADER: unsigned 16-bit sides
    h.width = in.le16(18);
    height = in.le16(20);
    bits = in.le16(24);
  } else if (info_size >= 40) {  // BITMAPINFOHEADER and its extensions: signed 32-bit sides
    h.width = static_cast<int32_t>(in.le32(18));
    height = static_cast<int32_t>(in.le32(22));  // negative: rows stored top-down
    bits = in.le16(28);
  } else {
    in.fail("info header of " + std::to_string(info_size) + " bytes", 14);
  }
  h.height = height < 0 ? -height : height;
  if (h.width <= 0 || h.height == 0 || height == std::numeric_limits<int32_t>::min())
    in.fail("size " + std::to_string(h.width) + "x" + std::to_string(height), 18);
  if (bits != 1 && bits != 4 && bits != 8 && bits != 16 && bits != 24 && bits != 32)
    in.fail(std::to_string(bits) + " bits per pixel", info_size == 12 ? 24 : 28);
  h.channels = bits == 32 ? 4 : 3;
  return h;
}

}  // namespace

ImageHeader read_image_header(std::string_view bytes) {
  if (bytes.substr(0, kPngSignature.size()) == kPngSignature) return read_png(bytes);
  if (bytes.substr(0, 3) == "\xFF\xD8\xFF") return read_jpeg(bytes);
  if (bytes.substr(0, 2) == "BM") return read_bmp(bytes);
  throw ImageRefused("not a decodable image (no PNG, JPEG or BMP signature)");
}

}  // namespace emt
