#include "engine/train/trainer.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

#include "engine/data/batch.h"

namespace emt {

Trainer::Trainer(Model& model, const Config& config, const Dataset& data)
    : model_(model),
      config_(config),
      data_(data),
      epochs_(config.get_int("train.epochs")),
      batch_(config.get_int("train.batch")),
      seed_(static_cast<uint64_t>(config.get_int("train.seed"))),
      augment_(augment_config(config)),
      norm_{static_cast<float>(config.get_float("data.norm_mean")),
            static_cast<float>(config.get_float("data.norm_std"))} {
  OptimizerConfig opt;
  opt.kind = config.get_string("train.optimizer");
  opt.momentum = config.get_float("train.momentum");
  opt.weight_decay = config.get_float("train.weight_decay");
  optimizer_ = Optimizer::make(opt);
  schedule_.kind = config.get_string("train.schedule");
  schedule_.base_lr = config.get_float("train.lr");
  schedule_.warmup_steps = config.get_int("train.warmup_steps");
  if (batch_ < 2)
    throw GraphError(config.where("train.batch"), "train.batch must be at least 2 (batch norm)");
  if (static_cast<int64_t>(data.split.train.size()) < batch_)
    throw GraphError(config.where("train.batch"),
                     "train.batch = " + std::to_string(batch_) + " exceeds the " +
                         std::to_string(data.split.train.size()) + " training images");
}

CheckpointOwner Trainer::checkpoint_owner() const {
  return {model_.graph().name, config_.get_string("train.optimizer")};
}

// Partial batches are dropped: a batch-norm step on a handful of images is mostly noise.
int64_t Trainer::steps_per_epoch() const {
  return static_cast<int64_t>(data_.split.train.size()) / batch_;
}

std::vector<ParamSlot> Trainer::trainable_slots() {
  std::vector<ParamSlot> slots;
  ParamStore& store = model_.params();
  for (const std::string& name : store.names()) {
    ParamEntry& e = store.at(name);
    if (!e.spec.trainable) continue;
    const bool is_weight = e.spec.name == "weight" && e.spec.shape.size() > 1;
    slots.push_back(
        {name, e.value.data(), e.grad.data(), static_cast<int64_t>(e.value.size()), is_weight});
  }
  return slots;
}

double Trainer::score(const EvalReport& report) {
  double s = 0;
  if (report.has_cls) s += report.cls.acc + (std::isfinite(report.cls.auc) ? report.cls.auc : 0);
  if (report.has_seg) s += report.seg.dsc;
  return s;
}

EpochStats Trainer::run_epoch(const std::function<void(const StepProgress&)>& progress) {
  using Clock = std::chrono::steady_clock;
  const int64_t epoch = state_.epochs_done;
  const int64_t steps = steps_per_epoch();
  const int64_t total_steps = steps * epochs_;

  // The order of epoch e depends only on (seed, e), so a resumed run sees the same batches.
  std::vector<int> order = data_.split.train;
  std::mt19937_64 rng(seed_ * 1000003u + static_cast<uint64_t>(epoch));
  std::shuffle(order.begin(), order.end(), rng);

  Executor& exec = model_.executor(batch_, Mode::kTrain);
  std::vector<ParamSlot> slots = trainable_slots();
  EpochStats stats;
  // Augmented copies of the step's samples; the buffers are reused from step to step. A sample's
  // augmentation depends only on (seed, epoch, sample index): not on threads, batch or resumes.
  std::vector<Sample> scratch(augment_.enabled ? static_cast<size_t>(batch_) : 0);
  const auto start = Clock::now();
  for (int64_t step = 0; step < steps; ++step) {
    std::vector<const Sample*> chunk;
    for (int64_t i = 0; i < batch_; ++i) chunk.push_back(&data_.samples[order[step * batch_ + i]]);
    if (augment_.enabled) {
      tbb::parallel_for(int64_t{0}, batch_, [&](int64_t i) {
        const int index = order[step * batch_ + i];
        augment(data_.samples[index], scratch[i], augment_, augment_seed(seed_, epoch, index),
                norm_);
      });
      for (int64_t i = 0; i < batch_; ++i) chunk[i] = &scratch[i];
    }
    load_batch(exec, chunk);
    const int64_t global_step = optimizer_->step_count();
    exec.forward(seed_ ^ static_cast<uint64_t>(global_step) * 0x9e3779b97f4a7c15ull);
    model_.params().zero_grads();
    const ObjectiveValue loss = exec.backward();
    if (!std::isfinite(loss.total))
      throw std::runtime_error("training diverged: loss is " + std::to_string(loss.total) +
                               " at epoch " + std::to_string(epoch + 1) + " step " +
                               std::to_string(step + 1) + "; lower train.lr");
    const double lr = lr_at(schedule_, global_step, total_steps);
    optimizer_->step(slots, lr);
    model_.params().mark_updated();  // fused inference programs refold from the new weights
    stats.train_loss += loss.total / static_cast<double>(steps);

    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    stats.images_per_s = static_cast<double>((step + 1) * batch_) / elapsed;
    if (progress) {
      const double remaining_steps =
          static_cast<double>(steps - step - 1 + (epochs_ - epoch - 1) * steps);
      progress({epoch, epochs_, step, steps, loss, stats.images_per_s,
                remaining_steps * static_cast<double>(batch_) / stats.images_per_s, lr});
    }
  }
  stats.val = evaluate(model_, data_.samples, data_.split.val, config_.get_int("eval.batch"),
                       config_.get_float("eval.threshold"));
  stats.val_score = score(stats.val);
  stats.improved = stats.val_score > state_.best_score;
  if (stats.improved) {
    state_.best_score = stats.val_score;
    state_.best_epoch = epoch;
  }
  state_.epochs_done = epoch + 1;
  state_.images_per_s = stats.images_per_s;
  return stats;
}

}  // namespace emt
