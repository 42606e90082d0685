// A training checkpoint: parameters, batch-norm statistics, optimizer buffers and the position
// in the schedule, in one safetensors file, so that --resume continues bit-exactly.
#pragma once

#include <filesystem>

#include "engine/runtime/params.h"
#include "engine/train/optimizer.h"

namespace emt {

struct TrainingState {
  int64_t epochs_done = 0;
  double best_score = -1;
  int64_t best_epoch = -1;
};

void save_checkpoint(const std::filesystem::path& path, const std::string& graph_name,
                     const ParamStore& params, const Optimizer& optimizer,
                     const TrainingState& state);
// Throws with the path and the reason if the file does not belong to this graph.
TrainingState load_checkpoint(const std::filesystem::path& path, const std::string& graph_name,
                              ParamStore& params, Optimizer& optimizer);

}  // namespace emt
