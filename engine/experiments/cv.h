// Repeated cross-validation as one job: K folds x S seeds of one graph, each run choosing its
// epoch and its classification threshold on its fold's validation part and scoring its test
// part once at that threshold. The tables say how much the figures vary across runs (mean, sd,
// 95% t interval), and the pooled out-of-fold ROC gives one curve per seed over every fold's
// test part. Resumable like every job (job.h).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "engine/eval/operating_point.h"
#include "engine/experiments/job.h"
#include "engine/experiments/spread.h"

namespace emt {

struct CvSpec {
  std::filesystem::path graph;
  std::vector<std::string> overrides;  // for every training, before the fold and seed settings
  std::filesystem::path job_dir;
  int folds = 4;  // >= 2: fold_settings (75% train / 12.5% val / 12.5% test for 4)
  int seeds = 1;  // >= 1: train.seed = the resolved train.seed, + 1, ..., + seeds - 1
  // eval.target_sensitivity of every run of a graph with a classifier, in (0, 1].
  double target_sensitivity = 0.9;
};

struct CvRun {
  int64_t seed = 0;
  int fold = 0;  // 1 .. folds
  std::filesystem::path dir;
  double threshold = 0;  // chosen on the fold's val part; NaN without a classifier
  Scores test;
};

struct CvMetric {
  std::string name;  // "acc", "sen", "spe", "auc", "dsc", "iou"
  Spread spread;     // across the runs where it is defined
};

// One seed's test scores of all folds pooled: every fold's test part once.
struct CvPooledRoc {
  int64_t seed = 0;
  size_t images = 0;
  double auc = 0;
  std::vector<RocPoint> points;
};

struct CvReport {
  std::vector<CvRun> runs;  // by seed, then by fold
  std::vector<CvMetric> metrics;
  std::vector<CvPooledRoc> pooled;  // by seed; empty without a classifier
  std::string markdown;             // cv_report.md
};

inline constexpr const char* kCvRunsCsv = "cv_runs.csv";  // seed,fold,dir,threshold,acc,..,iou
inline constexpr const char* kCvSummaryCsv = "cv_summary.csv";  // metric,n,mean,sd,ci_low,ci_high
inline constexpr const char* kCvSummaryJson = "cv_summary.json";
inline constexpr const char* kCvReportMarkdown = "cv_report.md";
inline constexpr const char* kPooledRocCsv = "pooled_roc.csv";  // seed,fpr,tpr,threshold

// Throws std::invalid_argument for folds < 2, seeds < 1 or a target sensitivity outside (0, 1];
// errors of the trainings propagate (their directories keep what they saved, for the next call
// to resume).
CvReport cross_validation(const CvSpec& spec, const JobOptions& options = {});

}  // namespace emt
