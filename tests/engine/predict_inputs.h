// Inputs for the `engine predict` tests, in process and through the CLI: blurred noise images of
// given sizes, and tiny-graph weights whose masks have both a lesion and a background part.
#pragma once

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "engine/dsl/parser.h"
#include "engine/io/safetensors.h"
#include "engine/runtime/batch.h"
#include "engine/runtime/model.h"

namespace emt::test {

// Writes each image (8-bit grey, blurred noise from rng) with OpenCV's imgcodecs, independently
// of the engine's codec module.
inline void write_noise_images(const std::filesystem::path& dir,
                               const std::vector<std::pair<std::string, cv::Size>>& images,
                               std::mt19937& rng) {
  std::uniform_int_distribution<int> pixel(0, 255);
  for (const auto& [name, size] : images) {
    cv::Mat image(size, CV_8U);
    for (auto it = image.begin<uint8_t>(); it != image.end<uint8_t>(); ++it)
      *it = static_cast<uint8_t>(pixel(rng));
    cv::GaussianBlur(image, image, {5, 5}, 2);
    std::filesystem::create_directories((dir / name).parent_path());
    if (!cv::imwrite((dir / name).string(), image))
      throw std::runtime_error("cannot write " + (dir / name).string());
  }
}

// Random weights leave every mask probability on one side of 0.5; the median mask logit of a
// flat grey image is moved to 0 so that masks have both sides.
inline void centre_mask_logits(Model& model, int side) {
  Sample grey{"g", std::vector<float>(static_cast<size_t>(side * side), 0.1f),
              std::vector<float>(static_cast<size_t>(side * side)), 0};
  Executor& exec = model.executor(1, Mode::kEval);
  const Sample* batch[] = {&grey};
  load_batch(exec, batch);
  exec.forward();
  std::vector<float> seg = exec.read(exec.program().outputs.at(kMaskOutput));
  std::nth_element(seg.begin(), seg.begin() + static_cast<std::ptrdiff_t>(seg.size() / 2),
                   seg.end());
  const float median = seg[seg.size() / 2];
  model.params().at("seg_logit.bias").value.at(0) -= std::log(median / (1 - median));
  model.params().mark_updated();
}

// Weights of file's graph (seeded) with centred mask logits and the metadata `engine predict`
// reads: input size side, normalisation 0.5 / 0.25, threshold 0.375.
inline void write_predict_weights(const GraphFile& file, const std::filesystem::path& path,
                                  int side) {
  Model model(file, 11);
  centre_mask_logits(model, side);
  SafetensorsFile weights;
  weights.tensors = model.params().to_tensors();
  weights.metadata = {{"graph", file.graph.name},
                      {"input_size", std::to_string(side)},
                      {"norm_mean", "0.5"},
                      {"norm_std", "0.25"},
                      {"threshold", "0.375"}};
  write_safetensors(path, weights);
}

}  // namespace emt::test
