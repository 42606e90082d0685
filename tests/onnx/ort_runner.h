// What the ONNX export and import tests share: the source and ONNX Runtime folders, ONNX Runtime
// (onnxruntime-node, through tools/ort/run_model.js) run on one input, and the random inputs and
// parameters the engine and ORT are compared on.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "engine/runtime/model.h"
#include "ops/core/tensor.h"

namespace emt::test {

// EMT_SOURCE_DIR, else the working directory.
std::filesystem::path source_dir();

// Where tools/setup.sh installed onnxruntime-node: EMT_ORT_DIR, else <build>/ort.
std::filesystem::path ort_dir();

// Why ONNX Runtime cannot run here; empty when it can.
std::string ort_unavailable();

struct OrtOutput {
  Shape shape;
  std::vector<float> data;
};

// Runs tools/ort/run_model.js on `input` (of `shape`), with its files in `work_dir`; every output
// of the model, by name. Adds a failure, and returns nothing, when ORT fails.
std::map<std::string, OrtOutput> run_ort(const std::filesystem::path& work_dir,
                                         const std::filesystem::path& model_path,
                                         const std::vector<float>& input, const Shape& shape);

// `count` values from N(0, 1).
std::vector<float> random_input(int64_t count, uint32_t seed);

// Gamma/beta, biases and running statistics away from their initial 1/0 values, so that
// mistakes in any of them (swapped mean and var, training-mode statistics, a dropped bias) show.
// Does not mark the parameters updated.
void randomize_params(Model& model, uint32_t seed);

}  // namespace emt::test
