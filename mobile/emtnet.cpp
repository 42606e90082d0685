#include "mobile/emtnet.h"

#include <algorithm>
#include <cstring>
#include <exception>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "mobile/preprocess.h"
#include "mobile/runtime.h"

struct emt_model {
  emt::mobile::Runtime runtime;
  int input_size = 0, channels = 0;
  float mean = 0, std = 1, threshold = 0.5f;
  std::vector<float> input;  // one preprocessed image, reused by every call
};

namespace {

void report(const std::string& message, char* error, size_t error_size) {
  if (!error || error_size == 0) return;
  const size_t n = std::min(message.size(), error_size - 1);
  std::memcpy(error, message.data(), n);
  error[n] = '\0';
}

float metadata_number(const emt::mobile::Artifact& a, const char* key, const std::string& path) {
  const auto it = a.metadata.find(key);
  if (it == a.metadata.end())
    throw std::runtime_error(path + ": the model has no '" + key +
                             "' setting (compile it with graph2mobile from a run's weights)");
  size_t used = 0;
  const float v = std::stof(it->second, &used);
  if (used != it->second.size()) throw std::runtime_error(path + ": '" + key + "' is not a number");
  return v;
}

emt_model* load(const std::string& path, int threads) {
  emt::mobile::Artifact artifact = emt::mobile::read_artifact(path);
  const emt::mobile::ValueDesc image = artifact.values[artifact.image];
  if (image.height != image.width)
    throw std::runtime_error(path + ": the model's input is " + std::to_string(image.height) + "x" +
                             std::to_string(image.width) + ", not square");
  if (!artifact.outputs.count("cls") && !artifact.outputs.count("seg"))
    throw std::runtime_error(path + ": the model has neither a 'cls' nor a 'seg' output");
  const float mean = metadata_number(artifact, "norm_mean", path);
  const float std = metadata_number(artifact, "norm_std", path);
  const float threshold =
      artifact.metadata.count("threshold") ? metadata_number(artifact, "threshold", path) : 0.5f;
  auto* model = new emt_model{emt::mobile::Runtime(std::move(artifact), 1, threads),
                              static_cast<int>(image.height),
                              static_cast<int>(image.channels),
                              mean,
                              std,
                              threshold,
                              std::vector<float>(image.size())};
  return model;
}

}  // namespace

extern "C" {

emt_model* emt_model_load(const char* path, int threads, char* error, size_t error_size) {
  try {
    if (!path) throw std::invalid_argument("no model path");
    return load(path, threads);
  } catch (const std::exception& e) {
    report(e.what(), error, error_size);
  }
  return nullptr;
}

void emt_model_free(emt_model* model) { delete model; }

int emt_model_input_size(const emt_model* model) { return model ? model->input_size : 0; }

float emt_model_threshold(const emt_model* model) { return model ? model->threshold : 0.0f; }

int emt_model_predict(emt_model* model, const uint8_t* pixels, int width, int height,
                      int row_stride, float* probability, uint8_t* mask, char* error,
                      size_t error_size) {
  try {
    if (!model || !pixels) throw std::invalid_argument("no model or no pixels");
    emt::mobile::preprocess_grey({pixels, width, height, row_stride}, model->input_size,
                                 model->channels, model->mean, model->std, model->input.data());
    model->runtime.run(model->input, 1);
    const auto& outputs = model->runtime.artifact().outputs;
    if (probability)
      *probability = outputs.count("cls") ? model->runtime.output("cls")[0]
                                          : std::numeric_limits<float>::quiet_NaN();
    if (mask) {
      if (!outputs.count("seg")) throw std::invalid_argument("the model predicts no mask");
      emt::mobile::restore_mask(model->runtime.output("seg").data(), model->input_size, width,
                                height, 0.5f, mask);
    }
    return 0;
  } catch (const std::exception& e) {
    report(e.what(), error, error_size);
  }
  return -1;
}

}  // extern "C"
