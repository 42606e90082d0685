#include "engine/experiments/job.h"

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <ostream>
#include <stdexcept>

#include "engine/dsl/parser.h"
#include "engine/io/atomic_file.h"
#include "engine/train/run.h"

namespace emt {
namespace {

namespace fs = std::filesystem;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
inline constexpr const char* kJobFile = "job.json";

double number_or_nan(const nlohmann::json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_number() ? j[key].get<double>() : kNaN;
}

std::string duration(double seconds) {
  const long s = std::lround(seconds);
  if (s >= 3600) return std::to_string(s / 3600) + "h" + std::to_string(s / 60 % 60) + "m";
  if (s >= 60) return std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
  return std::to_string(s) + "s";
}

std::string metric(const char* name, double v) {
  char buf[48];
  std::snprintf(buf, sizeof buf, " %s %.3f", name, v);
  return std::isfinite(v) ? std::string(buf) : std::string(" ") + name + " n/a";
}

std::string scores_line(const Scores& s) {
  std::string line;
  if (s.has_cls)
    line +=
        metric("acc", s.acc) + metric("sen", s.sen) + metric("spe", s.spe) + metric("auc", s.auc);
  if (s.has_seg) line += metric("dsc", s.dsc) + metric("iou", s.iou);
  return line.empty() ? "no scores" : line.substr(1);
}

TrainingResult load_result(const fs::path& dir) {
  TrainingResult result;
  result.dir = dir;
  const fs::path path = dir / kMetricsFile;
  try {
    result.metrics = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path.string() + ": not valid JSON (" + e.what() +
                             "); delete it to redo the training's evaluation");
  }
  result.test = scores_from_json(result.metrics);
  if (result.metrics.contains("val")) result.val = scores_from_json(result.metrics["val"]);
  return result;
}

}  // namespace

Scores scores_from_json(const nlohmann::json& metrics) {
  Scores s;
  s.has_cls = metrics.is_object() && metrics.contains("acc");
  s.has_seg = metrics.is_object() && metrics.contains("dsc");
  s.acc = number_or_nan(metrics, "acc");
  s.sen = number_or_nan(metrics, "sen");
  s.spe = number_or_nan(metrics, "spe");
  s.auc = number_or_nan(metrics, "auc");
  s.dsc = number_or_nan(metrics, "dsc");
  s.iou = number_or_nan(metrics, "iou");
  return s;
}

TrainingState training_state(const fs::path& dir) {
  if (fs::is_regular_file(dir / kMetricsFile) && fs::is_regular_file(dir / kPerImageFile))
    return TrainingState::kFinished;
  if (fs::is_regular_file(dir / kCheckpointFile)) return TrainingState::kResumable;
  return TrainingState::kFresh;
}

void claim_job_dir(const fs::path& job_dir, const nlohmann::json& description) {
  const fs::path path = job_dir / kJobFile;
  if (fs::exists(path)) {
    nlohmann::json existing;
    try {
      existing = nlohmann::json::parse(read_file(path));
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error(path.string() + ": not valid JSON (" + e.what() + ")");
    }
    if (existing != description) {
      throw std::runtime_error(job_dir.string() +
                               " holds another job; choose a new output directory (or delete "
                               "this one) to run\n  " +
                               description.dump() + "\nit holds\n  " + existing.dump());
    }
    return;
  }
  fs::create_directories(job_dir);
  write_file_atomic(path, description.dump(2) + "\n");
}

std::vector<TrainingResult> run_trainings(const fs::path& job_dir,
                                          std::span<const TrainingSpec> trainings,
                                          const JobOptions& options) {
  std::ostream* out = options.console;
  const size_t n = trainings.size();
  const auto prefix = [&](size_t i) {
    // Appended piecewise: "[" + std::string trips GCC 12's false -Wrestrict positive.
    std::string text = "[";
    text += std::to_string(i + 1);
    text += "/";
    text += std::to_string(n);
    text += "] ";
    text += trainings[i].label;
    return text;
  };

  std::vector<GraphFile> files;
  files.reserve(n);
  size_t states[3] = {0, 0, 0};
  for (size_t i = 0; i < n; ++i) {
    try {
      files.push_back(parse_graph_file(trainings[i].graph, trainings[i].overrides));
    } catch (const std::exception&) {
      if (out) *out << prefix(i) << ": its graph or settings are wrong:\n" << std::flush;
      throw;
    }
    ++states[static_cast<int>(training_state(job_dir / trainings[i].name))];
  }
  const size_t pending = n - states[static_cast<int>(TrainingState::kFinished)];
  if (out)
    *out << "job " << job_dir.string() << ": " << n << " trainings ("
         << states[static_cast<int>(TrainingState::kFinished)] << " done, "
         << states[static_cast<int>(TrainingState::kResumable)] << " to resume, "
         << states[static_cast<int>(TrainingState::kFresh)] << " to start)\n"
         << std::flush;

  std::vector<TrainingResult> results;
  results.reserve(n);
  double seconds_run = 0;
  size_t runs = 0;
  for (size_t i = 0; i < n; ++i) {
    const fs::path dir = job_dir / trainings[i].name;
    const TrainingState state = training_state(dir);
    if (state == TrainingState::kFinished) {
      results.push_back(load_result(dir));
      if (out)
        *out << prefix(i) << ": finished before: " << scores_line(results.back().test) << "\n";
      continue;
    }
    if (state == TrainingState::kFresh) fs::remove_all(dir);  // a start that saved no epoch
    if (out)
      *out << prefix(i)
           << (state == TrainingState::kResumable ? ": resuming from its checkpoint in "
                                                  : ": training in ")
           << dir.string() << "\n"
           << std::flush;
    const auto start = std::chrono::steady_clock::now();
    try {
      run_pipeline(files[i], {.out_dir = dir,
                              .resume = state == TrainingState::kResumable,
                              .backend = options.backend,
                              .console = options.verbose ? out : nullptr});
    } catch (const std::exception&) {
      if (out) *out << prefix(i) << ": failed; its directory is " << dir.string() << "\n";
      throw;
    }
    const double took =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    seconds_run += took;
    ++runs;
    results.push_back(load_result(dir));
    if (out) {
      const size_t left = pending - runs;
      *out << prefix(i) << ": " << scores_line(results.back().test) << " in " << duration(took)
           << (left ? ", ETA " + duration(seconds_run / static_cast<double>(runs) *
                                          static_cast<double>(left))
                    : std::string())
           << "\n"
           << std::flush;
    }
  }
  return results;
}

std::vector<std::string> fold_settings(int fold, int folds) {
  if (folds < 2 || fold < 1 || fold > folds)
    throw std::invalid_argument("fold_settings: fold " + std::to_string(fold) + " of " +
                                std::to_string(folds) + " (folds >= 2, fold in 1 .. folds)");
  return {"data.folds=" + std::to_string(2 * folds), "data.fold=" + std::to_string(2 * (fold - 1))};
}

std::string value_label(double v) {
  if (std::isfinite(v) && v == std::round(v) && std::abs(v) < 1e15) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", v);
    return buf;
  }
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : std::string("?");
}

std::string float_assignment(const std::string& key, double v) {
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  if (ec != std::errc()) throw std::logic_error("float_assignment: cannot print " + key);
  return key + "=" + std::string(buf, end);
}

}  // namespace emt
