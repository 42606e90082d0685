// A resumable batch of trainings in one job directory: each training is a sub-directory that
// run_pipeline fills. Running the job again skips the trainings that finished, resumes the
// interrupted one from its checkpoint and starts the rest, so an experiment of many hours
// survives a crash or a Ctrl-C at the cost of at most one epoch.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "engine/compiler/program.h"

namespace emt {

// One training of a job.
struct TrainingSpec {
  std::string name;   // its sub-directory of the job directory: "wp1.5_fold2"
  std::string label;  // its progress label: "wp=1.5 fold 2/4"
  std::filesystem::path graph;
  std::vector<std::string> overrides;  // "section.key=value", applied in order after the file
};

struct JobOptions {
  Backend backend = Backend::kReference;
  std::ostream* console = nullptr;  // "[3/56] wp=2.0 fold 2/4: ..." lines; null for silence
  bool verbose = false;             // also echo each training's own log (epochs, validation)
};

// Test-split scores of a training (metrics.json). A metric of a head the graph lacks is NaN and
// its has_ flag false; a metric the test split cannot define (SEN with no malignant image) is
// NaN with the flag true.
struct Scores {
  bool has_cls = false, has_seg = false;
  double acc = 0, sen = 0, spe = 0, auc = 0, dsc = 0, iou = 0;
};
Scores scores_from_json(const nlohmann::json& metrics);

struct TrainingResult {
  std::filesystem::path dir;
  nlohmann::json metrics;  // metrics.json: test scores at the top level, validation in "val"
  Scores test, val;
};

enum class TrainingState {
  kFinished,   // metrics.json and per_image.csv exist: skipped
  kResumable,  // checkpoint.safetensors exists: resumed (an evaluation only, if training ended)
  kFresh,      // nothing usable: started from scratch
};
TrainingState training_state(const std::filesystem::path& dir);

// Records what the job is (experiment, graphs, settings, values) in job_dir/job.json, or checks
// that the record already there describes the same job: a job directory never mixes trainings
// of two experiments. Throws std::runtime_error naming both descriptions when they differ.
void claim_job_dir(const std::filesystem::path& job_dir, const nlohmann::json& description);

// Parses every training's graph with its settings first (a mistake fails before hours of
// training), then runs them in order. Returns the results in the order of the specs. A training
// that throws stops the job; the error names its directory.
std::vector<TrainingResult> run_trainings(const std::filesystem::path& job_dir,
                                          std::span<const TrainingSpec> trainings,
                                          const JobOptions& options);

// The settings of fold f (1-based) of the paper's F-fold cross-validation: data.folds = 2F,
// data.fold = 2(f - 1), grouped_kfold's even folds, whose val and test parts are the F quarters
// of a plain F-fold cross-validation, each halved (group_split.h). Across the F folds the test
// parts are disjoint, and test and val parts together hold every image once.
std::vector<std::string> fold_settings(int fold, int folds);

// "2.0", "1.5", "10.0", "1.25": a setting value for labels and directory names.
std::string value_label(double v);
// "objective.w_p=1.5": the shortest text that parses back to exactly v.
std::string float_assignment(const std::string& key, double v);

}  // namespace emt
