// The paper's experiments (docs/PAPER.md, "Experiments to reproduce") as one-command pipelines.
// Each writes a job directory: job.json (what the job is), one run_pipeline run directory per
// training, and the experiment's tables and figures. Running the same command again resumes:
// finished trainings are read back, the interrupted one continues from its last epoch's
// checkpoint, and the tables and figures are rewritten from every training's metrics.json.
// Progress goes to JobOptions::console as "[3/56] wp=2.0 fold 2/4: ..." lines.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "engine/experiments/job.h"

namespace emt {

// W_p in {1, 1.5, ..., 5} and {6, 7, 8, 9, 10}: the 14 values of Fig. 2.
const std::vector<double>& paper_wp_values();
// {1, 1.5, 2, 2.5, 3}: each axis of the W_p x W_c grid.
const std::vector<double>& paper_weight_values();

// ---------------------------------------------------------------------------------------------
// W_p sweep (Fig. 2): the single-task classifier at each W_p, on every fold of the paper's
// cross-validation (75% train / 12.5% val / 12.5% test per fold). Fold f of F (1-based) is
// data.folds = 2F, data.fold = 2(f - 1): grouped_kfold's even folds, whose val and test parts
// are the F quarters of a plain F-fold cross-validation, each halved (group_split.h).

struct WpSweepSpec {
  std::filesystem::path graph;         // graphs/single_clf.toml
  std::vector<std::string> overrides;  // for every training, before the W_p and fold settings
  std::filesystem::path job_dir;
  std::vector<double> values = paper_wp_values();  // distinct, > 0
  int folds = 4;                                   // >= 2
};

struct WpSweepRow {
  double wp = 0;
  int fold = 0;  // 1 .. folds
  std::filesystem::path dir;
  Scores test;
};

// Means over the folds where a metric is defined (SEN needs a malignant test image), and the
// sample standard deviations (NaN below two such folds).
struct WpSweepMean {
  double wp = 0;
  int folds = 0;
  Scores mean, sd;
};

struct WpSweepReport {
  std::vector<WpSweepRow> rows;    // in training order: by W_p as given, then by fold
  std::vector<WpSweepMean> means;  // by ascending W_p
};

inline constexpr const char* kWpSweepCsv = "wp_sweep.csv";           // wp,fold,acc,sen,spe,auc
inline constexpr const char* kWpSweepMeanCsv = "wp_sweep_mean.csv";  // wp,folds,acc,..,auc_sd
inline constexpr const char* kWpSweepPlot = "wp_sweep.png";          // mean ACC/SEN/SPE vs W_p

// Throws std::invalid_argument for bad values or folds, std::runtime_error when the config
// lacks data.folds/data.fold or the graph has no classifier output; errors of the trainings
// propagate (their directories keep what they saved, for the next call to resume).
WpSweepReport wp_sweep(const WpSweepSpec& spec, const JobOptions& options = {});

// ---------------------------------------------------------------------------------------------
// Ablation (Table 1): EMT-Net, Single-CLF and Single-SGM trained and tested on the same split.
// The plain 70/15/15 split of data.seed; the single-task models are run with every setting of
// the EMT-Net file as resolved with the overrides (data, training, augmentation, evaluation and
// loss weights), so the three differ in their graphs alone. ablation.md is the paper's table.

struct AblationSpec {
  std::filesystem::path emtnet, single_clf, single_sgm;
  std::vector<std::string> overrides;
  std::filesystem::path job_dir;
};

struct AblationRow {
  std::string model;  // "EMT-Net", "Single-CLF", "Single-SGM"
  std::filesystem::path dir;
  int64_t params = 0;        // trainable parameters, as compile() counts them
  int64_t state_params = 0;  // batch-norm running statistics
  double size_mb = 0;        // fp32 bytes of both / 10^6: the weights an inference needs
  Scores test;
};

struct AblationReport {
  std::vector<AblationRow> rows;  // EMT-Net, Single-CLF, Single-SGM
  bool same_test_images = false;  // the three per_image.csv list the same images
  std::string markdown;           // ablation.md
};

inline constexpr const char* kAblationMarkdown = "ablation.md";
inline constexpr const char* kAblationCsv = "ablation.csv";

AblationReport ablation(const AblationSpec& spec, const JobOptions& options = {});

// ---------------------------------------------------------------------------------------------
// Weight tuning: EMT-Net at every (W_p, W_c) of a grid, plain split. grid.csv has the test and
// the validation scores (pick on validation; the test scores are for reporting); grid.png the
// test SEN and SPE heat maps.

struct WeightGridSpec {
  std::filesystem::path graph;  // graphs/emtnet.toml
  std::vector<std::string> overrides;
  std::filesystem::path job_dir;
  std::vector<double> wp_values = paper_weight_values();  // distinct, > 0
  std::vector<double> wc_values = paper_weight_values();  // distinct, > 0
};

struct WeightGridRow {
  double wp = 0, wc = 0;
  std::filesystem::path dir;
  Scores test, val;
};

struct WeightGridReport {
  std::vector<WeightGridRow> rows;  // by W_p, then W_c, as given
  // The row of the best validation balanced accuracy (SEN + SPE) / 2; -1 if none is defined.
  int best_on_val = -1;
};

inline constexpr const char* kGridCsv = "grid.csv";
inline constexpr const char* kGridPlot = "grid.png";

WeightGridReport weight_grid(const WeightGridSpec& spec, const JobOptions& options = {});

}  // namespace emt
