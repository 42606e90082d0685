#include "engine/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>

#include "engine/data/loader.h"
#include "engine/runtime/batch.h"

namespace emt {
namespace {

template <typename Pointer>
bool all_finite(const std::vector<ParamSlot>& slots, Pointer ParamSlot::*member) {
  for (const ParamSlot& slot : slots) {
    const float* data = slot.*member;
    for (int64_t i = 0; data && i < slot.size; ++i)
      if (!std::isfinite(data[i])) return false;
  }
  return true;
}

// Stops the run at this step, naming the op where the step first went non-finite; nothing of
// this step is saved, so the last checkpoint and weights files stay the last good ones.
[[noreturn]] void throw_non_finite(Executor& exec, const std::string& what, int64_t epoch,
                                   int64_t step, double loss) {
  std::string where = "no op's values are non-finite";
  if (const std::optional<NonFiniteValue> found = exec.first_non_finite()) {
    const Node& node = *found->step->node;
    where = "first at node '" + node.name + "' (op " + node.op + ", " + node.loc.str() +
            "): " + found->what;
  }
  throw std::runtime_error("training diverged at epoch " + std::to_string(epoch + 1) + " step " +
                           std::to_string(step + 1) + ": " + what + " is not finite (loss " +
                           std::to_string(loss) + "); " + where +
                           ". The last checkpoint is kept; lower train.lr or check the data");
}

}  // namespace

Trainer::Trainer(Model& model, const Config& config, const Dataset& data)
    : model_(model),
      config_(config),
      data_(data),
      epochs_(config.get_int("train.epochs")),
      batch_(config.get_int("train.batch")),
      patience_(config.get_int("train.patience")),
      prefetch_batches_(config.get_int("train.prefetch_batches")),
      seed_(static_cast<uint64_t>(config.get_int("train.seed"))),
      augment_(augment_config(config)),
      norm_(normalization(config)) {
  OptimizerConfig opt;
  opt.kind = config.get_string("train.optimizer");
  opt.momentum = config.get_float("train.momentum");
  opt.weight_decay = config.get_float("train.weight_decay");
  optimizer_ = Optimizer::make(opt);
  schedule_.kind = config.get_string("train.schedule");
  schedule_.base_lr = config.get_float("train.lr");
  schedule_.warmup_steps = config.get_int("train.warmup_steps");
  const double ema_decay = config.get_float("train.ema_decay");
  if (ema_decay != 0) {
    if (!(ema_decay > 0 && ema_decay < 1))
      throw GraphError(config.where("train.ema_decay"),
                       "train.ema_decay = " + std::to_string(ema_decay) +
                           " is outside (0, 1) (0 turns the average off)");
    average_ = std::make_unique<WeightAverage>(ema_decay);
  }
  if (batch_ < 2)
    throw GraphError(config.where("train.batch"), "train.batch must be at least 2 (batch norm)");
  if (patience_ < 0)
    throw GraphError(config.where("train.patience"),
                     "train.patience = " + std::to_string(patience_) +
                         " is negative (0 turns early stopping off)");
  if (prefetch_batches_ < 0)
    throw GraphError(config.where("train.prefetch_batches"),
                     "train.prefetch_batches = " + std::to_string(prefetch_batches_) +
                         " is negative (0 prepares each batch when it is needed)");
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

bool Trainer::stopped_early() const {
  return patience_ > 0 && state_.epochs_without_improvement >= patience_ &&
         state_.epochs_done < epochs_;
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
  BatchLoader loader(data_.samples, std::move(order), epoch,
                     {batch_, prefetch_batches_, augment_, seed_, norm_});
  double compute_seconds = 0;
  const auto seconds_since = [](Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
  };
  const auto start = Clock::now();
  for (int64_t step = 0; step < steps; ++step) {
    const auto wait_start = Clock::now();
    const std::span<const Sample* const> chunk = loader.next();
    stats.wait_seconds += seconds_since(wait_start);
    load_batch(exec, chunk);
    const auto compute_start = Clock::now();
    const int64_t global_step = optimizer_->step_count();
    exec.forward(seed_ ^ static_cast<uint64_t>(global_step) * 0x9e3779b97f4a7c15ull);
    model_.params().zero_grads();
    const ObjectiveValue loss = exec.backward();
    const auto stop = [&](const std::string& what) {
      throw_non_finite(exec, what, epoch, step, loss.total);
    };
    if (!std::isfinite(loss.total)) stop("the loss");
    if (!all_finite(slots, &ParamSlot::grad)) stop("a gradient");
    const double lr = lr_at(schedule_, global_step, total_steps);
    optimizer_->step(slots, lr);
    if (!all_finite(slots, &ParamSlot::value)) stop("the updated weights");
    model_.params().mark_updated();  // fused inference programs refold from the new weights
    if (average_) average_->update(model_.params(), optimizer_->step_count());
    compute_seconds += seconds_since(compute_start);
    stats.train_loss += loss.total / static_cast<double>(steps);

    stats.train_seconds = seconds_since(start);
    stats.images_per_s = static_cast<double>((step + 1) * batch_) / stats.train_seconds;
    if (progress) {
      const double remaining_steps =
          static_cast<double>(steps - step - 1 + (epochs_ - epoch - 1) * steps);
      progress({epoch, epochs_, step, steps, loss, stats.images_per_s,
                remaining_steps * static_cast<double>(batch_) / stats.images_per_s, lr});
    }
  }
  stats.compute_images_per_s = static_cast<double>(steps * batch_) / compute_seconds;
  stats.wait_fraction = stats.wait_seconds / stats.train_seconds;
  // The same evaluation as the test split gets, so that the best epoch is chosen on it.
  const AveragedWeightsScope averaged(average_.get(), model_.params());
  stats.val = evaluate(model_, data_.samples, data_.split.val, config_.get_int("eval.batch"),
                       config_.get_float("eval.threshold"), predict_options(config_));
  stats.val_score = score(stats.val);
  stats.improved = stats.val_score > state_.best_score;
  if (stats.improved) {
    state_.best_score = stats.val_score;
    state_.best_epoch = epoch;
    state_.epochs_without_improvement = 0;
  } else {
    ++state_.epochs_without_improvement;
  }
  state_.epochs_done = epoch + 1;
  state_.images_per_s = stats.images_per_s;
  state_.compute_images_per_s = stats.compute_images_per_s;
  state_.data_wait_fraction = stats.wait_fraction;
  return stats;
}

}  // namespace emt
