// Image bytes through the dataset reader's path (engine/data/readers.cpp): the header check
// against the limits, OpenCV's decoder in the codec module, the conversion to grey and the mask
// binarisation. Limits smaller than the defaults keep each input fast to decode; the limit
// checks themselves are the same code.
#include <cstddef>
#include <cstdint>
#include <exception>

#include "engine/data/readers.h"
#include "fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = emt::fuzz::write_input(data, size, "input.png");
  emt::ImageLimits limits;
  limits.max_pixels = int64_t{1} << 22;
  limits.max_padded_pixels = int64_t{1} << 24;
  try {
    emt::read_grey_image(path, limits);
    emt::read_mask(path, limits);
  } catch (const std::exception&) {
  }
  return 0;
}
