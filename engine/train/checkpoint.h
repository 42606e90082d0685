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
  double images_per_s = 0;  // training throughput of the last epoch run
};

struct CheckpointOwner {
  std::string graph;           // graph name
  std::string optimizer_kind;  // "adam" or "sgd": another kind's buffers cannot continue exactly
};

void save_checkpoint(const std::filesystem::path& path, const CheckpointOwner& owner,
                     const ParamStore& params, const Optimizer& optimizer,
                     const TrainingState& state);
// Throws with the path and the reason if the file belongs to another graph or optimizer kind.
TrainingState load_checkpoint(const std::filesystem::path& path, const CheckpointOwner& owner,
                              ParamStore& params, Optimizer& optimizer);

}  // namespace emt
