// Writing test images with OpenCV's own encoder, independently of the engine's codec module.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <opencv2/imgcodecs.hpp>
#include <string>

namespace emt::test {

// dir/name (parent folders made), encoded by the name's extension.
inline std::filesystem::path write_image(const std::filesystem::path& dir, const std::string& name,
                                         const cv::Mat& m) {
  const std::filesystem::path path = dir / name;
  std::filesystem::create_directories(path.parent_path());
  EXPECT_TRUE(cv::imwrite(path.string(), m)) << path;
  return path;
}

}  // namespace emt::test
