// Mask post-processing: keep the largest connected lesion. A breast-ultrasound view is taken of
// one lesion, and a decoder's errors are mostly small detached blobs of shadow or tissue that
// look like it; dropping them is cheap and is how the mask is meant to be read.
#pragma once

#include <cstdint>
#include <span>

namespace emt {

// Zeroes the pixels of every 8-connected region of pixels with prob >= threshold in the
// height x width probability map except the largest (the first in row-major order on a tie);
// pixels below the threshold keep their values. Returns the number of regions found. Throws
// std::invalid_argument when probs does not hold height * width values.
int64_t keep_largest_region(std::span<float> probs, int64_t height, int64_t width,
                            float threshold = 0.5f);

}  // namespace emt
