#include "engine/eval/eval_command.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <ostream>
#include <sstream>
#include <stdexcept>

#include "engine/data/dataset.h"
#include "engine/eval/plots.h"
#include "engine/eval/trained_weights.h"
#include "engine/io/atomic_file.h"
#include "engine/io/run_files.h"
#include "engine/io/safetensors.h"
#include "engine/runtime/model.h"

namespace emt {
namespace {

namespace fs = std::filesystem;

nlohmann::json number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

void log(std::ostream* console, const std::string& line) {
  if (console) *console << line << "\n" << std::flush;
}

nlohmann::json classification_json(const ClassificationMetrics& m, size_t n) {
  return {{"n", n},
          {"threshold", m.threshold},
          {"acc", number(m.acc)},
          {"sen", number(m.sen)},
          {"spe", number(m.spe)},
          {"auc", number(m.auc)},
          {"confusion", {{"tp", m.tp}, {"tn", m.tn}, {"fp", m.fp}, {"fn", m.fn}}}};
}

// per_image.csv as report_csv writes it, with the split each image belongs to appended.
std::string per_image_csv(const EvalReport& report, const std::vector<std::string>& splits) {
  std::istringstream in(report_csv(report));
  std::string out, line;
  for (size_t row = 0; std::getline(in, line); ++row)
    out += line + "," + (row == 0 ? std::string("split") : splits.at(row - 1)) + "\n";
  return out;
}

// The predicted mask probabilities of samples[indices] (one batch), as evaluate() scored them.
std::vector<std::vector<float>> predict_masks(Model& model, const std::vector<Sample>& samples,
                                              const std::vector<int>& indices,
                                              PredictOptions options) {
  Executor& exec = model.executor(static_cast<int64_t>(indices.size()), Mode::kEval);
  std::vector<const Sample*> batch;
  for (const int i : indices) batch.push_back(&samples[static_cast<size_t>(i)]);
  std::vector<float> cls, seg;
  predict_batch(exec, batch, options, cls, seg);
  const size_t per = seg.size() / indices.size();
  std::vector<std::vector<float>> masks;
  for (size_t k = 0; k < indices.size(); ++k)
    masks.emplace_back(seg.begin() + static_cast<std::ptrdiff_t>(k * per),
                       seg.begin() + static_cast<std::ptrdiff_t>((k + 1) * per));
  return masks;
}

std::string file_safe(const std::string& id) {
  std::string s = id;
  for (char& c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) c = '_';
  return s;
}

// overlays/best_<rank>_<id>.png and worst_<rank>_<id>.png; files of an earlier evaluation in the
// same folder are removed first so the folder shows only this one.
std::vector<fs::path> write_overlays(Model& model, const std::vector<Sample>& samples,
                                     const std::vector<int>& indices, const EvalReport& report,
                                     const Normalization& norm, int count, const fs::path& dir) {
  fs::create_directories(dir);
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (e.path().extension() == ".png" &&
        (name.rfind("best_", 0) == 0 || name.rfind("worst_", 0) == 0))
      fs::remove(e.path());
  }
  std::vector<size_t> order(report.images.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return report.images[a].mask.dice > report.images[b].mask.dice;
  });
  const size_t best = std::min(order.size(), static_cast<size_t>(std::max(count, 0)));
  const size_t worst = std::min(order.size() - best, best);
  std::vector<std::pair<std::string, size_t>> picks;  // (file prefix, position in report)
  for (size_t k = 0; k < best; ++k) picks.emplace_back("best_" + std::to_string(k + 1), order[k]);
  for (size_t k = 0; k < worst; ++k)
    picks.emplace_back("worst_" + std::to_string(k + 1), order[order.size() - 1 - k]);
  if (picks.empty()) return {};

  std::vector<int> sample_indices;
  for (const auto& pick : picks) sample_indices.push_back(indices[pick.second]);
  const std::vector<std::vector<float>> masks =
      predict_masks(model, samples, sample_indices, report.predict);
  std::vector<fs::path> written;
  for (size_t k = 0; k < picks.size(); ++k) {
    const ImageResult& r = report.images[picks[k].second];
    std::string caption = r.id + "  label " + std::to_string(r.label);
    if (report.has_cls) caption += "  p " + fmt("%.2f", r.prob);
    caption += "  Dice " + fmt("%.3f", r.mask.dice);
    const Sample& sample = samples[static_cast<size_t>(sample_indices[k])];
    const fs::path path = dir / (picks[k].first + "_" + file_safe(r.id) + ".png");
    write_png(path, overlay_panels(overlay_image(sample, masks[k], norm, caption)));
    written.push_back(path);
  }
  return written;
}

}  // namespace

EvalCommandResult run_eval(const GraphFile& file, const EvalCommandOptions& options) {
  const std::vector<std::string> splits = {"all", "train", "val", "test"};
  if (std::find(splits.begin(), splits.end(), options.split) == splits.end())
    throw std::invalid_argument("eval: split '" + options.split +
                                "' is not all, train, val or test");
  if (options.out_dir.empty()) throw std::invalid_argument("eval: no output directory");
  if (options.weights.empty()) throw std::invalid_argument("eval: no weights file");
  if (options.threshold && !std::isfinite(*options.threshold))
    throw std::invalid_argument("eval: the threshold must be a finite number");
  if (options.target_sensitivity) {
    if (!(*options.target_sensitivity > 0.0 && *options.target_sensitivity <= 1.0))
      throw std::invalid_argument("eval: target sensitivity " +
                                  fmt("%g", *options.target_sensitivity) + " is not in (0, 1]");
    if (options.split != "all" && options.split != "test")
      throw std::invalid_argument(
          "eval: a target sensitivity chooses the threshold on val and reports test; split '" +
          options.split + "' cannot be used with it");
  }

  // Weights and their settings.
  Config config = file.config;
  const TrainedWeights trained = load_trained_weights(options.weights, config, options.threshold);
  const SafetensorsFile& weights = trained.file;
  const double threshold = trained.threshold;
  const std::string& threshold_source = trained.threshold_source;
  Model model(file, 0, options.backend);
  model.params().load_tensors(weights, options.weights.string());
  model.set_inference_precision(options.precision);
  if (options.precision != Precision::kFp32)
    log(options.console, std::string("precision: ") + precision_name(options.precision) +
                             " inference (activations between oneDNN convolutions)");

  const int channels = static_cast<int>(file.graph.inputs.front().shape.front());
  const Dataset data = load_dataset(config, channels);
  const Normalization norm = normalization(config);
  log(options.console, "data: " + data.description);
  for (const ReadIssue& issue : data.skipped)
    log(options.console, "skipped " + issue.path + ": " + issue.reason);
  std::vector<std::string> split_of(data.samples.size());
  for (const auto& [name, indices] :
       {std::pair{"train", &data.split.train}, std::pair{"val", &data.split.val},
        std::pair{"test", &data.split.test}})
    for (const int i : *indices) split_of[static_cast<size_t>(i)] = name;

  EvalCommandResult result;
  result.dir = options.out_dir;
  result.split = options.target_sensitivity ? "test" : options.split;
  std::vector<int> indices;
  if (result.split == "all") {
    indices.resize(data.samples.size());
    std::iota(indices.begin(), indices.end(), 0);
  } else {
    indices = result.split == "train" ? data.split.train
              : result.split == "val" ? data.split.val
                                      : data.split.test;
  }
  if (indices.empty())
    throw std::runtime_error("eval: the " + result.split + " split of " + data.description +
                             " is empty");
  const int64_t batch = config.get_int("eval.batch");
  const PredictOptions predict = predict_options(config);
  if (predict.flip_tta)
    log(options.console,
        "test-time augmentation: each image is also scored mirrored left-right and the "
        "probabilities averaged (eval.flip_tta)");
  result.report = evaluate(model, data.samples, indices, batch, threshold, predict);
  result.threshold = threshold;
  EvalReport& report = result.report;
  ClassificationMetrics at_default = report.cls;
  std::optional<EvalReport> val;
  if (options.target_sensitivity) {
    if (!report.has_cls)
      throw std::runtime_error("eval: a target sensitivity needs a graph with a classifier");
    val = evaluate(model, data.samples, data.split.val, batch, threshold, predict);
    result.operating_point =
        choose_operating_point(val->images, report.images, *options.target_sensitivity);
    result.threshold = result.operating_point->threshold;
    report.cls = result.operating_point->test;
  }

  BootstrapOptions boot;
  boot.resamples = options.bootstrap_resamples;
  boot.seed = options.bootstrap_seed;
  boot.threshold = result.threshold;
  result.ci = bootstrap_metrics(report.images, boot);

  nlohmann::json& metrics = result.metrics;
  metrics = report_json(report);
  metrics["graph"] = file.graph.name;
  if (const auto it = weights.metadata.find("graph"); it != weights.metadata.end())
    metrics["weights_graph"] = it->second;
  metrics["weights"] = options.weights.string();
  metrics["data"] = data.description;
  metrics["split"] = result.split;
  if (report.has_cls) metrics["threshold_source"] = threshold_source;
  add_intervals(metrics, result.ci, report.has_cls, report.has_seg);
  if (const auto& op = result.operating_point) {
    metrics["threshold_source"] = "target sensitivity on val";
    metrics["operating_point"] = {
        {"target_sensitivity", op->target_sensitivity},
        {"threshold", op->threshold},
        {"chosen_on", "val"},
        {"val", classification_json(op->val, val->images.size())},
        {"test", classification_json(op->test, report.images.size())},
        {"default_threshold", threshold},
        {"default_threshold_source", threshold_source},
        {"val_at_default_threshold", classification_json(val->cls, val->images.size())},
        {"test_at_default_threshold", classification_json(at_default, report.images.size())}};
  }

  fs::create_directories(result.dir);
  std::vector<std::string> image_splits;
  for (const int i : indices) image_splits.push_back(split_of[static_cast<size_t>(i)]);
  write_file_atomic(result.dir / kPerImageFile, per_image_csv(report, image_splits));
  if (report.has_cls) {
    const ScoredLabels scored = scored_labels(report.images);
    const PlotMarker marker{1.0 - report.cls.spe, report.cls.sen,
                            "t=" + fmt("%.3f", result.threshold) + " sen " +
                                fmt("%.2f", report.cls.sen) + " spe " +
                                fmt("%.2f", report.cls.spe)};
    write_png(result.dir / kRocPlotFile,
              plot_roc(roc_curve(scored.probs, scored.labels), report.cls.auc, marker));
    write_png(result.dir / kReliabilityPlotFile,
              plot_reliability(reliability_bins(scored.probs, scored.labels), report.ece));
  }
  if (report.has_seg) {
    const auto written = write_overlays(model, data.samples, indices, report, norm,
                                        options.overlays, result.dir / kOverlayDir);
    metrics["overlays"] = nlohmann::json::array();
    for (const fs::path& p : written) metrics["overlays"].push_back(p.filename().string());
  }
  write_file_atomic(result.dir / kMetricsFile, metrics.dump(2) + "\n");

  std::string summary = result.split + " (" + std::to_string(report.images.size()) + " images";
  if (report.has_cls) summary += ", threshold " + fmt("%.4g", result.threshold);
  if (predict.flip_tta) summary += ", flip TTA";
  if (predict.largest_region) summary += ", largest region";
  summary += "):" + intervals_text(result.ci, report.has_cls, report.has_seg);
  if (result.operating_point)
    log(options.console, "threshold " + fmt("%.4g", result.threshold) + " chosen on val (" +
                             std::to_string(val->images.size()) + " images) for sensitivity >= " +
                             fmt("%g", *options.target_sensitivity) + ": val sen " +
                             fmt("%.3f", result.operating_point->val.sen) + " spe " +
                             fmt("%.3f", result.operating_point->val.spe));
  log(options.console,
      summary + "  (95% bootstrap CI, " + std::to_string(result.ci.resamples) + " resamples)");
  log(options.console, "evaluation directory: " + result.dir.string());
  return result;
}

}  // namespace emt
