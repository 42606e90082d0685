// CSV manifests as training (read_csv_manifest) and prediction (list_images) read them, in a
// folder that holds a small image and its mask, so that rows naming them are loaded.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <opencv2/core.hpp>

#include "engine/data/readers.h"
#include "engine/io/atomic_file.h"
#include "engine/io/image_codec.h"
#include "fuzz/fuzz_input.h"

namespace {

void write_png(const char* name, const cv::Mat& image) {
  const std::vector<unsigned char> png = emt::encode_png(image);
  emt::write_file_atomic(emt::fuzz::scratch_dir() / name,
                         std::string_view(reinterpret_cast<const char*>(png.data()), png.size()));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  cv::Mat image(4, 6, CV_8UC1), mask(4, 6, CV_8UC1, cv::Scalar(0));
  cv::randu(image, 0, 256);
  mask(cv::Rect(1, 1, 2, 2)).setTo(255);
  write_png("a.png", image);
  write_png("a_mask.png", mask);
  write_png("small_mask.png", cv::Mat(2, 2, CV_8UC1, cv::Scalar(255)));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = emt::fuzz::write_input(data, size, "manifest.csv");
  emt::ReadOptions opts;
  opts.include_normal = size > 0 && (data[0] & 1);
  try {
    emt::ReadReport report;
    emt::read_csv_manifest(path, opts, report);
  } catch (const std::exception&) {
  }
  try {
    emt::list_images(path);
  } catch (const std::exception&) {
  }
  return 0;
}
