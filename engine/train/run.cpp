#include "engine/train/run.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>

#include "engine/eval/bootstrap.h"
#include "engine/import/bn_calibration.h"
#include "engine/import/init_weights.h"
#include "engine/io/atomic_file.h"
#include "engine/runtime/threading.h"
#include "engine/train/run_calibration.h"
#include "engine/train/run_threshold.h"
#include "engine/train/trainer.h"

namespace emt {
namespace {

namespace fs = std::filesystem;

std::string timestamp() {
  const std::time_t now = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", std::localtime(&now));
  return buf;
}

std::string fmt(const char* format, double a, double b = 0, double c = 0, double d = 0) {
  char buf[256];
  std::snprintf(buf, sizeof buf, format, a, b, c, d);
  return buf;
}

std::string duration(double seconds) {
  const int s = static_cast<int>(seconds + 0.5);
  return s >= 60 ? std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s"
                 : std::to_string(s) + "s";
}

std::string metrics_line(const EvalReport& r) {
  std::string line = "loss " + fmt("%.4f", r.loss);
  if (r.has_cls)
    line += fmt(" acc %.3f sen %.3f spe %.3f auc %.3f", r.cls.acc, r.cls.sen, r.cls.spe, r.cls.auc);
  if (r.has_seg) line += fmt(" dsc %.3f iou %.3f", r.seg.dsc, r.seg.iou);
  return line;
}

// Appends to log.txt as it goes (a crash keeps every line written so far) and echoes progress.
class RunLog {
 public:
  RunLog(const fs::path& path, std::ostream* console, bool append)
      : file_(path, append ? std::ios::app : std::ios::trunc), console_(console) {
    if (!file_) throw std::runtime_error(path.string() + ": cannot open the run log for writing");
  }
  void line(const std::string& text) {
    file_ << text << "\n" << std::flush;
    if (console_) *console_ << text << "\n" << std::flush;
  }

 private:
  std::ofstream file_;
  std::ostream* console_;
};

SafetensorsFile weights_file(const Model& model, const Config& config) {
  SafetensorsFile file;
  file.tensors = model.params().to_tensors();
  file.metadata = {{"graph", model.graph().name},
                   {"input_size", std::to_string(config.get_int("data.input_size"))},
                   {"norm_mean", fmt("%.9g", config.get_float("data.norm_mean"))},
                   {"norm_std", fmt("%.9g", config.get_float("data.norm_std"))},
                   {"threshold", fmt("%.9g", config.get_float("eval.threshold"))}};
  return file;
}

}  // namespace

RunSummary run_pipeline(const GraphFile& file, const RunOptions& options) {
  const Config& config = file.config;
  RunSummary summary;
  summary.dir = options.out_dir;
  if (summary.dir.empty()) summary.dir = fs::path("runs") / (file.graph.name + "-" + timestamp());
  const fs::path checkpoint_path = summary.dir / kCheckpointFile;
  if (options.resume && !fs::exists(checkpoint_path))
    throw std::runtime_error(checkpoint_path.string() + ": no checkpoint to resume from");
  // Data and settings are checked before the run directory exists, so a bad setting leaves
  // no half-made run behind.
  const int channels = static_cast<int>(file.graph.inputs.front().shape.front());
  check_target_sensitivity(file);
  const Dataset data = load_dataset(config, channels);
  Model model(file, static_cast<uint64_t>(config.get_int("train.seed")), options.backend);
  // Pretrained initial weights replace the initialisation of the tensors they hold (a resumed
  // run takes everything from its checkpoint instead). Loaded before the run directory exists.
  std::string init_weights_line;
  const std::string init_weights = config.get_string("train.init_weights");
  if (!init_weights.empty() && !options.resume) {
    InitWeightsReport loaded;
    try {
      loaded = load_initial_weights(model.params(), fs::path(init_weights));
    } catch (const std::runtime_error& e) {
      throw GraphError(config.where("train.init_weights"),
                       "train.init_weights = \"" + init_weights + "\": " + e.what());
    }
    init_weights_line = loaded.summary(init_weights);
    // Imported batch norms hold the file's folded statistics; training normalises by batch
    // statistics instead, so they are matched to this data before the first step.
    const int64_t calibration_images = config.get_int("train.bn_calibration_images");
    if (calibration_images < 0)
      throw GraphError(
          config.where("train.bn_calibration_images"),
          "train.bn_calibration_images must be >= 0, got " + std::to_string(calibration_images));
    if (calibration_images > 0)
      init_weights_line +=
          "; " + calibrate_batch_norms(model, bn_calibration_samples(data, calibration_images),
                                       loaded.loaded)
                     .summary();
  }
  Trainer trainer(model, config, data);
  fs::create_directories(summary.dir);

  std::string header = "# graph " + file.graph.name + " from";
  for (const std::string& f : file.graph.files) header += " " + f;
  write_file_atomic(summary.dir / kConfigFile, header + "\n" + config.to_toml());
  RunLog log(summary.dir / kLogFile, options.console, options.resume);
  log.line("data: " + data.description + "; split train " +
           std::to_string(data.split.train.size()) + " / val " +
           std::to_string(data.split.val.size()) + " / test " +
           std::to_string(data.split.test.size()));
  for (const ReadIssue& issue : data.skipped)
    log.line("skipped " + issue.path + ": " + issue.reason);
  if (!init_weights_line.empty()) log.line("initial weights: " + init_weights_line);

  if (options.resume) {
    trainer.state() = load_checkpoint(checkpoint_path, trainer.checkpoint_owner(), model.params(),
                                      trainer.optimizer(), trainer.average());
    log.line("resumed from " + checkpoint_path.string() + " after epoch " +
             std::to_string(trainer.state().epochs_done));
  }
  log.line("training " + file.graph.name + ": " + std::to_string(trainer.epochs()) + " epochs x " +
           std::to_string(trainer.steps_per_epoch()) + " steps, batch " +
           std::to_string(config.get_int("train.batch")) + ", " +
           config.get_string("train.optimizer") + " lr " + fmt("%g", config.get_float("train.lr")) +
           ", threads " + std::to_string(thread_count()) + ", backend " +
           backend_name(options.backend));

  if (!options.resume)
    write_file_atomic(summary.dir / kHistoryFile,
                      "epoch,train_loss,images_per_s,val_loss,val_score,data_wait\n");
  const int64_t report_every = std::max<int64_t>(1, trainer.steps_per_epoch() / 4);
  while (trainer.state().epochs_done < trainer.epochs() && !trainer.stopped_early()) {
    const EpochStats stats = trainer.run_epoch([&](const StepProgress& p) {
      if ((p.step + 1) % report_every != 0 && p.step + 1 != p.steps_per_epoch) return;
      std::string terms;
      for (size_t t = 0; t < p.loss.terms.size(); ++t) {
        if (t) terms += ' ';
        terms += loss_kind_name(model.graph().objective.terms[t].kind);
        terms += fmt(" %.4f", p.loss.terms[t]);
      }
      log.line("epoch " + std::to_string(p.epoch + 1) + "/" + std::to_string(p.epochs) + " step " +
               std::to_string(p.step + 1) + "/" + std::to_string(p.steps_per_epoch) +
               fmt(" loss %.4f", p.loss.total) + " (" + terms + ")" +
               fmt(" lr %.2e %.1f img/s", p.lr, p.images_per_s) + " ETA " + duration(p.eta_s));
    });
    const int64_t epoch = trainer.state().epochs_done;
    log.line("epoch " + std::to_string(epoch) + " val: " + metrics_line(stats.val) +
             fmt("; data wait %.1f%%", 100 * stats.wait_fraction) +
             (stats.improved ? "  (best so far, saved)" : ""));
    if (stats.improved) {
      const AveragedWeightsScope averaged(trainer.average(), model.params());
      write_safetensors(summary.dir / kWeightsFile, weights_file(model, config));
    }
    save_checkpoint(checkpoint_path, trainer.checkpoint_owner(), model.params(),
                    trainer.optimizer(), trainer.state(), trainer.average());
    const std::string history = read_file(summary.dir / kHistoryFile) +
                                fmt("%.0f,%.6f,%.2f,%.6f", static_cast<double>(epoch),
                                    stats.train_loss, stats.images_per_s, stats.val.loss) +
                                fmt(",%.6f,%.6f\n", stats.val_score, stats.wait_fraction);
    write_file_atomic(summary.dir / kHistoryFile, history);
  }

  const TrainingState& state = trainer.state();
  summary.stopped_early = trainer.stopped_early();
  if (summary.stopped_early)
    log.line("early stop after epoch " + std::to_string(state.epochs_done) +
             ": no better validation score for " +
             std::to_string(state.epochs_without_improvement) + " epochs (train.patience " +
             std::to_string(trainer.patience()) + ", best epoch " +
             std::to_string(state.best_epoch + 1) + ")");
  // Loading keeps up when the first figure is close to the second: the second leaves out the
  // time the steps waited for batches (and copied them into the model's inputs).
  if (state.images_per_s > 0 && state.compute_images_per_s > 0)
    log.line(fmt("throughput %.1f img/s with loading = %.0f%% of %.1f img/s compute-only",
                 state.images_per_s, 100 * state.images_per_s / state.compute_images_per_s,
                 state.compute_images_per_s) +
             " (epoch " + std::to_string(state.epochs_done) +
             fmt(", data wait %.1f%%)", 100 * state.data_wait_fraction));

  // The test split is scored once, with the weights that did best on validation, at the
  // threshold eval.threshold gives or validation chooses.
  SafetensorsFile best = read_safetensors(summary.dir / kWeightsFile);
  model.params().load_tensors(best, (summary.dir / kWeightsFile).string());
  summary.best_epoch = state.best_epoch + 1;
  summary.train_images_per_s = state.images_per_s;
  summary.data_wait_fraction = state.data_wait_fraction;
  const int64_t eval_batch = config.get_int("eval.batch");
  const auto score_val = [&] {
    return evaluate(model, data.samples, data.split.val, eval_batch,
                    config.get_float("eval.threshold"), predict_options(config));
  };
  EvalReport val = score_val();
  std::optional<RunCalibration> calibration;
  if (config.get_bool("eval.calibrate")) {
    calibration = calibrate_classifier(model, val);
    val = score_val();  // the operating point is chosen on the calibrated probabilities
    best.tensors = model.params().to_tensors();
    // A resumed finished run calibrates the calibrated weights again: the stored temperature
    // is the product, the one the original logits were divided by.
    const auto stored = best.metadata.find("temperature");
    const double before = stored == best.metadata.end() ? 1.0 : std::stod(stored->second);
    best.metadata["temperature"] = fmt("%.17g", before * calibration->temperature);
    log.line(fmt("calibration: temperature %.4f folded into the classifier's logit layer; ",
                 calibration->temperature) +
             fmt("val ECE %.4f -> %.4f", calibration->val_ece_before, val.ece));
  }
  const RunThreshold threshold = choose_run_threshold(config, val);
  if (threshold.target_sensitivity > 0) {
    // Stored with the weights, so that eval and predict apply the validation's choice.
    best.metadata["threshold"] = fmt("%.17g", threshold.value);
    best.metadata["threshold_source"] = threshold.source;
    log.line("operating point: threshold " + fmt("%.4f", threshold.value) + " (" +
             threshold.source + fmt("; val sen %.3f spe %.3f)", val.cls.sen, val.cls.spe));
  }
  if (calibration || threshold.target_sensitivity > 0)
    write_safetensors(summary.dir / kWeightsFile, best);
  summary.test = evaluate(model, data.samples, data.split.test, eval_batch, threshold.value,
                          predict_options(config));
  BootstrapOptions boot;  // the defaults `engine eval` uses: 2000 resamples, seed 42
  boot.threshold = threshold.value;
  summary.test_ci = bootstrap_metrics(summary.test.images, boot);
  nlohmann::json metrics = report_json(summary.test);
  add_intervals(metrics, summary.test_ci, summary.test.has_cls, summary.test.has_seg);
  metrics["graph"] = file.graph.name;
  metrics["split"] = "test";
  metrics["data"] = data.description;
  metrics["best_epoch"] = summary.best_epoch;
  metrics["train_images_per_s"] = summary.train_images_per_s;
  metrics["compute_images_per_s"] = state.compute_images_per_s;
  metrics["data_wait_fraction"] = summary.data_wait_fraction;
  metrics["epochs_trained"] = state.epochs_done;
  metrics["stopped_early"] = summary.stopped_early;
  if (threshold.target_sensitivity > 0) {
    metrics["threshold_source"] = threshold.source;
    metrics["operating_point"] = {{"target_sensitivity", threshold.target_sensitivity},
                                  {"threshold", threshold.value},
                                  {"chosen_on", "val"}};
  }
  if (calibration)
    metrics["calibration"] = {{"temperature", calibration->temperature},
                              {"fitted_on", "val"},
                              {"val_ece_before", calibration->val_ece_before},
                              {"val_ece_after", val.ece}};
  metrics["val"] = report_json(val);
  write_file_atomic(summary.dir / kMetricsFile, metrics.dump(2) + "\n");
  write_file_atomic(summary.dir / kPerImageFile, report_csv(summary.test));
  log.line("test (best epoch " + std::to_string(summary.best_epoch) + ", " +
           std::to_string(summary.test.images.size()) +
           " images, 95% bootstrap CI): " + fmt("loss %.4f", summary.test.loss) +
           intervals_text(summary.test_ci, summary.test.has_cls, summary.test.has_seg));
  log.line("run directory: " + summary.dir.string());
  return summary;
}

}  // namespace emt
