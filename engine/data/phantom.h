// Synthetic breast-ultrasound phantom: speckled layered tissue with one hypo-echoic lesion per
// image, smooth and oval when benign, spiculated with posterior shadowing when malignant. The
// class is visible in the image by construction, so a working pipeline must learn it; tests and
// the default run use it without any data download.
#pragma once

#include <cstdint>
#include <filesystem>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

namespace emt {

struct RawSample {
  std::string id;
  cv::Mat image;  // CV_8UC1 grey, any rectangular size
  cv::Mat mask;   // CV_8UC1 0/255, same size as image
  int label = 0;  // 0 benign, 1 malignant
};

struct PhantomConfig {
  int count = 400;
  uint64_t seed = 42;
  int min_side = 160;
  int max_side = 320;
  double malignant_fraction = 0.4;
};

// Depends only on (cfg.seed, index) and the size/fraction settings, never on call order or
// threads: identical bytes on every run of a build (OpenCV's per-CPU SIMD paths may round the
// float filters differently on another machine). Every prefix of the index range holds the
// malignant fraction to within 4 samples.
RawSample generate_phantom(const PhantomConfig& cfg, int index);

// The label generate_phantom gives index, without drawing the image.
int phantom_label(const PhantomConfig& cfg, int index);

// Generates indices [0, cfg.count) through emt::parallel_for.
std::vector<RawSample> generate_phantom_set(const PhantomConfig& cfg);

// BUSI layout for inspection or reuse: dir/{benign,malignant}/<id>.png and <id>_mask.png.
void write_phantom_busi_layout(const std::vector<RawSample>& samples,
                               const std::filesystem::path& dir);

}  // namespace emt
