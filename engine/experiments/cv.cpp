#include "engine/experiments/cv.h"

#include <array>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "engine/dsl/parser.h"
#include "engine/eval/metrics.h"
#include "engine/experiments/job_text.h"
#include "engine/experiments/per_image_table.h"
#include "engine/io/atomic_file.h"
#include "engine/train/run_threshold.h"

namespace emt {
namespace {

namespace fs = std::filesystem;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The metrics a cv job summarises, in table order, with their headers in cv_report.md.
constexpr std::array<const char*, 6> kMetricNames = {"acc", "sen", "spe", "auc", "dsc", "iou"};
constexpr std::array<const char*, 6> kMetricTitles = {"ACC", "SEN", "SPE", "AUC", "DSC", "IoU"};

double metric_of(const Scores& s, size_t k) {
  const std::array<double, 6> values = {s.acc, s.sen, s.spe, s.auc, s.dsc, s.iou};
  const bool defined = k < 4 ? s.has_cls : s.has_seg;
  return defined ? values[k] : kNaN;
}

void check_spec(const CvSpec& spec) {
  if (spec.folds < 2)
    throw std::invalid_argument("cv: folds must be at least 2, got " + std::to_string(spec.folds));
  if (spec.seeds < 1)
    throw std::invalid_argument("cv: seeds must be at least 1, got " + std::to_string(spec.seeds));
  if (!(spec.target_sensitivity > 0 && spec.target_sensitivity <= 1))
    throw std::invalid_argument("cv: target sensitivity " +
                                format_number("%g", spec.target_sensitivity) + " is not in (0, 1]");
}

std::vector<TrainingSpec> cv_trainings(const CvSpec& spec, const std::vector<int64_t>& seeds,
                                       bool classifier) {
  std::vector<TrainingSpec> trainings;
  for (const int64_t seed : seeds) {
    for (int f = 1; f <= spec.folds; ++f) {
      TrainingSpec t;
      t.name = "seed" + std::to_string(seed) + "_fold" + std::to_string(f);
      t.label = "seed " + std::to_string(seed) + " fold " + std::to_string(f) + "/" +
                std::to_string(spec.folds);
      t.graph = spec.graph;
      t.overrides = spec.overrides;
      t.overrides.push_back("train.seed=" + std::to_string(seed));
      for (std::string& setting : fold_settings(f, spec.folds))
        t.overrides.push_back(std::move(setting));
      // Each run's operating point is chosen on its own fold's validation part.
      if (classifier)
        t.overrides.push_back(float_assignment("eval.target_sensitivity", spec.target_sensitivity));
      trainings.push_back(std::move(t));
    }
  }
  return trainings;
}

std::string runs_csv(const std::vector<CvRun>& runs) {
  std::string table = "seed,fold,dir,threshold";
  for (const char* name : kMetricNames) table += std::string(",") + name;
  table += "\n";
  for (const CvRun& r : runs) {
    table += std::to_string(r.seed) + "," + std::to_string(r.fold) + "," +
             r.dir.filename().string() + "," + csv_number(r.threshold);
    // Appended piecewise: "," + std::string trips GCC 12's false -Wrestrict positive.
    for (size_t k = 0; k < kMetricNames.size(); ++k) {
      table += ",";
      table += csv_number(metric_of(r.test, k));
    }
    table += "\n";
  }
  return table;
}

std::vector<CvMetric> summarize(const std::vector<CvRun>& runs) {
  std::vector<CvMetric> metrics;
  for (size_t k = 0; k < kMetricNames.size(); ++k) {
    std::vector<double> values;
    for (const CvRun& r : runs) values.push_back(metric_of(r.test, k));
    metrics.push_back({kMetricNames[k], spread(values)});
  }
  return metrics;
}

// Per seed, the test images of all its folds pooled into one ROC curve. The folds' test parts
// are disjoint, so an image seen twice means the runs are not one seed's folds.
std::vector<CvPooledRoc> pooled_rocs(const std::vector<CvRun>& runs,
                                     const std::vector<int64_t>& seeds) {
  std::vector<CvPooledRoc> pooled;
  for (const int64_t seed : seeds) {
    std::vector<float> probs;
    std::vector<int> labels;
    std::set<std::string> seen;
    for (const CvRun& r : runs) {
      if (r.seed != seed) continue;
      for (const PerImageRow& row : read_per_image(r.dir)) {
        if (!seen.insert(row.id).second)
          throw std::runtime_error(r.dir.string() + ": image '" + row.id +
                                   "' is in the test part of two folds of seed " +
                                   std::to_string(seed));
        probs.push_back(static_cast<float>(row.prob));
        labels.push_back(row.label);
      }
    }
    pooled.push_back({seed, probs.size(), roc_auc(probs, labels), roc_points(probs, labels)});
  }
  return pooled;
}

std::string pooled_csv(const std::vector<CvPooledRoc>& pooled) {
  std::string table = "seed,fpr,tpr,threshold\n";
  for (const CvPooledRoc& p : pooled)
    for (const RocPoint& point : p.points)
      table += std::to_string(p.seed) + "," + csv_number(point.fpr) + "," + csv_number(point.tpr) +
               "," + (std::isinf(point.threshold) ? "inf" : csv_number(point.threshold)) + "\n";
  return table;
}

std::string summary_csv(const std::vector<CvMetric>& metrics) {
  std::string table = "metric,n,mean,sd,ci_low,ci_high\n";
  for (const CvMetric& m : metrics) {
    const Spread& s = m.spread;
    table += m.name + "," + std::to_string(s.n) + "," + csv_number(s.mean) + "," +
             csv_number(s.sd) + "," + csv_number(s.ci_low) + "," + csv_number(s.ci_high) + "\n";
  }
  return table;
}

nlohmann::json json_number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nullptr; }

nlohmann::json summary_json(const CvSpec& spec, const CvReport& report, bool classifier) {
  nlohmann::json j;
  j["folds"] = spec.folds;
  j["runs"] = report.runs.size();
  if (classifier) j["target_sensitivity"] = spec.target_sensitivity;
  for (const CvMetric& m : report.metrics) {
    const Spread& s = m.spread;
    j["metrics"][m.name] = {{"n", s.n},
                            {"mean", json_number(s.mean)},
                            {"sd", json_number(s.sd)},
                            {"ci95", {json_number(s.ci_low), json_number(s.ci_high)}}};
  }
  for (const CvPooledRoc& p : report.pooled)
    j["pooled_roc"].push_back(
        {{"seed", p.seed}, {"images", p.images}, {"auc", json_number(p.auc)}});
  return j;
}

std::string cell(double v) { return std::isfinite(v) ? format_number("%.3f", v) : "n/a"; }

std::string markdown(const CvSpec& spec, const std::string& graph, const CvReport& report,
                     bool classifier) {
  std::string md = "# Cross-validation of " + graph + ": " + std::to_string(spec.folds) +
                   " folds x " + std::to_string(spec.seeds) + " seeds\n\n";
  md += "| metric | runs | mean | sd | 95% CI |\n|---|---|---|---|---|\n";
  for (size_t k = 0; k < report.metrics.size(); ++k) {
    const Spread& s = report.metrics[k].spread;
    if (s.n == 0) continue;  // the graph has no such head
    md += std::string("| ") + kMetricTitles[k] + " | " + std::to_string(s.n) + " | " +
          cell(s.mean) + " | " + cell(s.sd) + " | [" + cell(s.ci_low) + ", " + cell(s.ci_high) +
          "] |\n";
  }
  md += "\n";
  if (classifier)
    md += "Operating point: each run's threshold reaches sensitivity " +
          format_number("%g", spec.target_sensitivity) +
          " on its fold's validation part (eval.target_sensitivity); its test part is scored "
          "once at it. ";
  md +=
      "The 95% CI is mean +- t(0.975, n - 1) sd / sqrt(n) over the runs; their spread mixes "
      "seed-to-seed and fold-to-fold variation.";
  if (!report.pooled.empty()) {
    md += "\n\nPooled out-of-fold test ROC (" + std::string(kPooledRocCsv) + "):";
    for (const CvPooledRoc& p : report.pooled)
      md += " seed " + std::to_string(p.seed) + " AUC " + cell(p.auc) + " over " +
            std::to_string(p.images) + " images;";
    md.back() = '.';
  }
  md += "\n\nPer run: " + std::string(kCvRunsCsv) + "; full precision: " + kCvSummaryCsv + ".\n";
  return md;
}

}  // namespace

CvReport cross_validation(const CvSpec& spec, const JobOptions& options) {
  check_spec(spec);
  const GraphFile probe = parse_graph_file(spec.graph, spec.overrides);
  const bool classifier = has_classifier(probe.graph);
  // The job sets every run's target itself; a different one in the settings would be overridden
  // without a word.
  const double configured = probe.config.get_float("eval.target_sensitivity");
  if (configured != 0 && configured != spec.target_sensitivity)
    throw std::invalid_argument(
        "cv: the settings give eval.target_sensitivity = " + format_number("%g", configured) +
        " but the job's target is " + format_number("%g", spec.target_sensitivity) +
        "; give the target once (--target-sensitivity)");
  std::vector<int64_t> seeds;
  for (int s = 0; s < spec.seeds; ++s) seeds.push_back(probe.config.get_int("train.seed") + s);
  nlohmann::json description = {{"experiment", "cv"},
                                {"graph", job_path(spec.graph)},
                                {"overrides", spec.overrides},
                                {"folds", spec.folds},
                                {"seeds", seeds}};
  if (classifier) description["target_sensitivity"] = spec.target_sensitivity;
  claim_job_dir(spec.job_dir, description);

  const std::vector<TrainingSpec> trainings = cv_trainings(spec, seeds, classifier);
  const std::vector<TrainingResult> results = run_trainings(spec.job_dir, trainings, options);
  CvReport report;
  for (size_t i = 0; i < results.size(); ++i) {
    const nlohmann::json& m = results[i].metrics;
    const double threshold =
        classifier && m.contains("threshold") ? m["threshold"].get<double>() : kNaN;
    report.runs.push_back({seeds[i / static_cast<size_t>(spec.folds)],
                           static_cast<int>(i % static_cast<size_t>(spec.folds)) + 1,
                           results[i].dir, threshold, results[i].test});
  }
  report.metrics = summarize(report.runs);
  if (classifier) report.pooled = pooled_rocs(report.runs, seeds);
  report.markdown = markdown(spec, probe.graph.name, report, classifier);

  write_file_atomic(spec.job_dir / kCvRunsCsv, runs_csv(report.runs));
  write_file_atomic(spec.job_dir / kCvSummaryCsv, summary_csv(report.metrics));
  write_file_atomic(spec.job_dir / kCvSummaryJson,
                    summary_json(spec, report, classifier).dump(2) + "\n");
  if (classifier) write_file_atomic(spec.job_dir / kPooledRocCsv, pooled_csv(report.pooled));
  write_file_atomic(spec.job_dir / kCvReportMarkdown, report.markdown);
  say(options, report.markdown);
  say(options, "wrote " + (spec.job_dir / kCvRunsCsv).string() + ", " + kCvSummaryCsv + ", " +
                   kCvSummaryJson + ", " + kCvReportMarkdown +
                   (classifier ? std::string(", ") + kPooledRocCsv : std::string()));
  return report;
}

}  // namespace emt
