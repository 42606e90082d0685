// A training checkpoint: parameters, batch-norm statistics, optimizer buffers and the position
// in the schedule, in one safetensors file, so that --resume continues bit-exactly.
#pragma once

#include <filesystem>

#include "engine/runtime/params.h"
#include "engine/train/optimizer.h"
#include "engine/train/weight_average.h"

namespace emt {

struct TrainingState {
  int64_t epochs_done = 0;
  double best_score = -1;
  int64_t best_epoch = -1;
  // The last epoch run: training throughput, the same counting only forward, backward and
  // optimizer time, and the share of the epoch spent waiting for batches.
  double images_per_s = 0;
  double compute_images_per_s = 0;
  double data_wait_fraction = 0;
  int64_t epochs_without_improvement = 0;  // in a row, up to the last one done (train.patience)
};

struct CheckpointOwner {
  std::string graph;           // graph name
  std::string optimizer_kind;  // "adam" or "sgd": another kind's buffers cannot continue exactly
};

// average: the weight average to save with the rest (null when train.ema_decay is off).
void save_checkpoint(const std::filesystem::path& path, const CheckpointOwner& owner,
                     const ParamStore& params, const Optimizer& optimizer,
                     const TrainingState& state, const WeightAverage* average = nullptr);
// Throws with the path and the reason if the file belongs to another graph or optimizer kind.
// A non-null average takes the file's averages (none if it was written without one: the average
// then restarts from the weights at the next step).
TrainingState load_checkpoint(const std::filesystem::path& path, const CheckpointOwner& owner,
                              ParamStore& params, Optimizer& optimizer,
                              WeightAverage* average = nullptr);

}  // namespace emt
