// Batch-norm calibration of imported weights. A file with batch norm folded into its
// convolutions (engine import-tflite) leaves each following batch norm as the identity plus the
// folded bias, with running statistics (0, 1 - eps) unrelated to the activations it will see.
// That is exact in eval, but training normalises by batch statistics, so the first steps would
// rescale and shift every layer away from the pretrained function. Calibration measures each
// imported batch norm's input over some images and rewrites its four tensors so that the running
// statistics are the measured ones while the eval function stays the same: training then starts
// (batch statistics ~ running statistics) where the pretrained network is.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "engine/data/dataset.h"
#include "engine/runtime/model.h"

namespace emt {

// Images per calibration forward pass.
inline constexpr int64_t kBnCalibrationBatch = 16;

struct BnCalibrationReport {
  std::vector<std::string> calibrated;  // batch_norm nodes, in execution order
  int64_t images = 0;

  // "calibrated 27 imported batch norms over 64 images".
  std::string summary() const;
};

// `count` samples of the training split (all of it when smaller), evenly spaced through it: the
// split is in index order, and real data sets are often stored class by class, so its first
// samples could all be benign.
std::vector<const Sample*> bn_calibration_samples(const Dataset& data, int64_t count);

// Calibrates every batch_norm node of the graph one of whose tensors is named in
// `loaded_params` (InitWeightsReport::loaded): the others, randomly initialised, are left alone.
// One eval-mode forward of the unfused graph over `images`, `batch` at a time, measures the
// per-channel mean m and (biased, as training uses) variance v of each such node's input; then,
// with eps the node's and gamma0, beta0, mean0, var0 its tensors before,
//   running_mean = m, running_var = v,
//   gamma = gamma0 * sqrt(v + eps) / sqrt(var0 + eps),
//   beta = beta0 + gamma0 * (m - mean0) / sqrt(var0 + eps),
// so that the eval function is unchanged. Since it is, calibrating one node changes no other
// node's input, and one pass measures them all. Marks the store updated when anything changed.
// Throws std::invalid_argument when there is a node to calibrate but no image.
BnCalibrationReport calibrate_batch_norms(Model& model, std::span<const Sample* const> images,
                                          std::span<const std::string> loaded_params,
                                          int64_t batch = kBnCalibrationBatch);

}  // namespace emt
