// The training loop over a compiled model: shuffled mini-batches, forward, the objective,
// backward, an optimizer step on the learning-rate schedule, and per-epoch validation.
#pragma once

#include <functional>
#include <memory>

#include "engine/data/augment.h"
#include "engine/data/dataset.h"
#include "engine/eval/evaluate.h"
#include "engine/train/checkpoint.h"
#include "engine/train/lr_schedule.h"
#include "engine/train/weight_average.h"

namespace emt {

struct StepProgress {
  int64_t epoch, epochs, step, steps_per_epoch;
  ObjectiveValue loss;
  double images_per_s;
  double eta_s;
  double lr;
};

// Times cover the training steps of the epoch, not its validation.
struct EpochStats {
  double train_loss = 0;
  double images_per_s = 0;          // images trained / seconds of the epoch's steps
  double compute_images_per_s = 0;  // images / seconds in forward, backward and optimizer
  double train_seconds = 0;
  double wait_seconds = 0;   // spent waiting for the loader's next batch
  double wait_fraction = 0;  // wait_seconds / train_seconds
  EvalReport val;
  double val_score = 0;  // the checkpoint selection score, see Trainer::score
  bool improved = false;
};

class Trainer {
 public:
  Trainer(Model& model, const Config& config, const Dataset& data);

  Optimizer& optimizer() { return *optimizer_; }
  // The running average of the weights (train.ema_decay), or null when it is off.
  WeightAverage* average() { return average_.get(); }
  CheckpointOwner checkpoint_owner() const;
  TrainingState& state() { return state_; }
  int64_t epochs() const { return epochs_; }
  int64_t steps_per_epoch() const;

  // train.patience: epochs in a row without a better validation score that stop training; 0 off.
  int64_t patience() const { return patience_; }
  // Whether training ends before epochs() because the patience ran out (also after a resume).
  bool stopped_early() const;

  // Trains epoch number state().epochs_done, then validates (on the averaged weights when
  // train.ema_decay is on); progress is called every few steps.
  EpochStats run_epoch(const std::function<void(const StepProgress&)>& progress = {});

  // Higher is better: accuracy + AUC for a classifier, plus Dice for a mask; the sum keeps
  // ties on a small validation split rare.
  static double score(const EvalReport& report);

 private:
  std::vector<ParamSlot> trainable_slots();

  Model& model_;
  const Config& config_;
  const Dataset& data_;
  std::unique_ptr<Optimizer> optimizer_;
  std::unique_ptr<WeightAverage> average_;
  LrSchedule schedule_;
  TrainingState state_;
  int64_t epochs_, batch_, patience_, prefetch_batches_;
  uint64_t seed_;
  AugmentConfig augment_;
  Normalization norm_;
};

}  // namespace emt
