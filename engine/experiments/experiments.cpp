#include "engine/experiments/experiments.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <numeric>
#include <ostream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <tuple>

#include "engine/compiler/program.h"
#include "engine/dsl/config.h"
#include "engine/dsl/parser.h"
#include "engine/eval/plots.h"
#include "engine/experiments/charts.h"
#include "engine/experiments/job_text.h"
#include "engine/experiments/per_image_table.h"
#include "engine/experiments/spread.h"
#include "engine/io/atomic_file.h"
#include "engine/runtime/batch.h"
#include "engine/train/run.h"
#include "engine/train/run_threshold.h"

namespace emt {
namespace {

namespace fs = std::filesystem;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void check_values(const std::vector<double>& values, const char* what) {
  if (values.empty()) throw std::invalid_argument(std::string(what) + ": no values");
  std::set<std::string> seen;
  for (double v : values) {
    if (!std::isfinite(v) || v <= 0)
      throw std::invalid_argument(std::string(what) + ": " + format_number("%g", v) +
                                  " is not > 0");
    if (!seen.insert(value_label(v)).second)
      throw std::invalid_argument(std::string(what) + ": " + value_label(v) + " given twice");
  }
}

// The mean and sample standard deviation of the finite values.
std::pair<double, double> mean_sd(const std::vector<double>& values) {
  const Spread s = spread(values);
  return {s.mean, s.sd};
}

// The image ids of a run's per_image.csv, sorted.
std::vector<std::string> test_image_ids(const fs::path& dir) {
  std::vector<std::string> ids;
  for (const PerImageRow& row : read_per_image(dir)) ids.push_back(row.id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

// Every setting of a resolved config as "section.key=value", output.dir excepted: applied to
// another graph file, they make its run use the same data, split, training and evaluation.
std::vector<std::string> resolved_settings(const Config& config) {
  std::vector<std::string> out;
  for (const ConfigKeySpec& spec : config_schema()) {
    if (spec.key == "output.dir") continue;
    const AttrValue& v = config.get(spec.key);
    if (const auto* i = std::get_if<int64_t>(&v)) {
      out.push_back(spec.key + "=" + std::to_string(*i));
    } else if (const auto* d = std::get_if<double>(&v)) {
      out.push_back(float_assignment(spec.key, *d));
    } else if (const auto* b = std::get_if<bool>(&v)) {
      out.push_back(spec.key + "=" + (*b ? "true" : "false"));
    } else {
      out.push_back(spec.key + "=" + std::get<std::string>(v));
    }
  }
  return out;
}

std::string percent(const Scores& s, double v) {
  if (!s.has_cls) return "-";
  return std::isfinite(v) ? format_number("%.1f", 100 * v) : "n/a";
}

std::string fraction(const Scores& s, double v) {
  if (!s.has_seg) return "-";
  return std::isfinite(v) ? format_number("%.2f", v) : "n/a";
}

}  // namespace

const std::vector<double>& paper_wp_values() {
  static const std::vector<double> values = {1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 6, 7, 8, 9, 10};
  return values;
}

const std::vector<double>& paper_weight_values() {
  static const std::vector<double> values = {1, 1.5, 2, 2.5, 3};
  return values;
}

// ---------------------------------------------------------------------------------------------

WpSweepReport wp_sweep(const WpSweepSpec& spec, const JobOptions& options) {
  check_values(spec.values, "wp_sweep W_p values");
  if (spec.folds < 2)
    throw std::invalid_argument("wp_sweep: folds must be at least 2, got " +
                                std::to_string(spec.folds));
  const GraphFile probe = parse_graph_file(spec.graph, spec.overrides);
  if (!has_classifier(probe.graph))
    throw std::runtime_error(spec.graph.string() + ": graph '" + probe.graph.name + "' has no '" +
                             kClassOutput + "' output to sweep W_p for");

  claim_job_dir(spec.job_dir, {{"experiment", "wp_sweep"},
                               {"graph", job_path(spec.graph)},
                               {"overrides", spec.overrides},
                               {"values", spec.values},
                               {"folds", spec.folds}});
  std::vector<TrainingSpec> trainings;
  for (double wp : spec.values) {
    for (int f = 1; f <= spec.folds; ++f) {
      TrainingSpec t;
      t.name = "wp" + value_label(wp) + "_fold" + std::to_string(f);
      t.label =
          "wp=" + value_label(wp) + " fold " + std::to_string(f) + "/" + std::to_string(spec.folds);
      t.graph = spec.graph;
      t.overrides = spec.overrides;
      t.overrides.push_back(float_assignment("objective.w_p", wp));
      for (std::string& setting : fold_settings(f, spec.folds))
        t.overrides.push_back(std::move(setting));
      trainings.push_back(std::move(t));
    }
  }
  const std::vector<TrainingResult> results = run_trainings(spec.job_dir, trainings, options);

  WpSweepReport report;
  std::string table = "wp,fold,acc,sen,spe,auc\n";
  for (size_t i = 0; i < results.size(); ++i) {
    const WpSweepRow row{spec.values[i / static_cast<size_t>(spec.folds)],
                         static_cast<int>(i % static_cast<size_t>(spec.folds)) + 1, results[i].dir,
                         results[i].test};
    table += value_label(row.wp) + "," + std::to_string(row.fold) + "," + csv_number(row.test.acc) +
             "," + csv_number(row.test.sen) + "," + csv_number(row.test.spe) + "," +
             csv_number(row.test.auc) + "\n";
    report.rows.push_back(row);
  }
  write_file_atomic(spec.job_dir / kWpSweepCsv, table);

  std::vector<double> sorted = spec.values;
  std::sort(sorted.begin(), sorted.end());
  std::string mean_table = "wp,folds,acc,sen,spe,auc,acc_sd,sen_sd,spe_sd,auc_sd\n";
  int undefined = 0;
  for (double wp : sorted) {
    std::vector<double> acc, sen, spe, auc;
    for (const WpSweepRow& r : report.rows) {
      if (r.wp != wp) continue;
      acc.push_back(r.test.acc);
      sen.push_back(r.test.sen);
      spe.push_back(r.test.spe);
      auc.push_back(r.test.auc);
      for (double v : {r.test.acc, r.test.sen, r.test.spe, r.test.auc})
        undefined += std::isfinite(v) ? 0 : 1;
    }
    WpSweepMean m;
    m.wp = wp;
    m.folds = spec.folds;
    m.mean.has_cls = m.sd.has_cls = true;
    std::tie(m.mean.acc, m.sd.acc) = mean_sd(acc);
    std::tie(m.mean.sen, m.sd.sen) = mean_sd(sen);
    std::tie(m.mean.spe, m.sd.spe) = mean_sd(spe);
    std::tie(m.mean.auc, m.sd.auc) = mean_sd(auc);
    m.mean.dsc = m.mean.iou = m.sd.dsc = m.sd.iou = kNaN;
    mean_table += value_label(wp) + "," + std::to_string(m.folds) + "," + csv_number(m.mean.acc) +
                  "," + csv_number(m.mean.sen) + "," + csv_number(m.mean.spe) + "," +
                  csv_number(m.mean.auc) + "," + csv_number(m.sd.acc) + "," + csv_number(m.sd.sen) +
                  "," + csv_number(m.sd.spe) + "," + csv_number(m.sd.auc) + "\n";
    report.means.push_back(m);
  }
  write_file_atomic(spec.job_dir / kWpSweepMeanCsv, mean_table);

  std::vector<ChartSeries> series(3);
  series[0].name = "ACC";
  series[1].name = "SEN";
  series[2].name = "SPE";
  for (const WpSweepMean& m : report.means) {
    series[0].y.push_back(m.mean.acc);
    series[0].err.push_back(m.sd.acc);
    series[1].y.push_back(m.mean.sen);
    series[1].err.push_back(m.sd.sen);
    series[2].y.push_back(m.mean.spe);
    series[2].err.push_back(m.sd.spe);
  }
  const std::string folds = std::to_string(spec.folds);
  write_png(
      spec.job_dir / kWpSweepPlot,
      line_chart(probe.graph.name + ": test metrics vs W_p, " + folds + "-fold cross-validation",
                 "W_p (weight of the malignant class in the weighted BCE)",
                 "mean over " + folds + " folds (bars: +/- 1 sd)", sorted, series));

  for (const WpSweepMean& m : report.means)
    say(options, "wp=" + value_label(m.wp) + ": mean acc " + format_number("%.3f", m.mean.acc) +
                     " sen " + format_number("%.3f", m.mean.sen) + " spe " +
                     format_number("%.3f", m.mean.spe) + " auc " +
                     format_number("%.3f", m.mean.auc));
  if (undefined)
    say(options, "note: " + std::to_string(undefined) +
                     " fold metrics are undefined (a test part without malignant or benign "
                     "images); the means use the folds where they are defined");
  say(options, "wrote " + (spec.job_dir / kWpSweepCsv).string() + ", " + kWpSweepMeanCsv + ", " +
                   kWpSweepPlot);
  return report;
}

// ---------------------------------------------------------------------------------------------

AblationReport ablation(const AblationSpec& spec, const JobOptions& options) {
  const GraphFile emtnet = parse_graph_file(spec.emtnet, spec.overrides);
  claim_job_dir(spec.job_dir, {{"experiment", "ablation"},
                               {"graphs",
                                {{"emtnet", job_path(spec.emtnet)},
                                 {"single_clf", job_path(spec.single_clf)},
                                 {"single_sgm", job_path(spec.single_sgm)}}},
                               {"overrides", spec.overrides}});
  const std::vector<std::string> shared = resolved_settings(emtnet.config);
  // Single-SGM has no classifier whose threshold validation could choose.
  std::vector<std::string> segmentation_only = shared;
  segmentation_only.push_back("eval.target_sensitivity=0");
  const std::vector<TrainingSpec> trainings = {
      {"emt_net", "EMT-Net", spec.emtnet, spec.overrides},
      {"single_clf", "Single-CLF", spec.single_clf, shared},
      {"single_sgm", "Single-SGM", spec.single_sgm, segmentation_only},
  };
  const std::vector<TrainingResult> results = run_trainings(spec.job_dir, trainings, options);

  AblationReport report;
  std::string table = "model,dir,params,state_params,size_mb,acc,sen,spe,auc,dsc,iou\n";
  const auto field = [](bool has, double v) { return has ? csv_number(v) : std::string(); };
  for (size_t i = 0; i < trainings.size(); ++i) {
    const GraphFile file = parse_graph_file(trainings[i].graph, trainings[i].overrides);
    const Program program = compile(std::make_shared<const Graph>(file.graph), 1);
    AblationRow row;
    row.model = trainings[i].label;
    row.dir = results[i].dir;
    row.params = program.trainable_param_count();
    row.state_params = program.state_param_count();
    row.size_mb = static_cast<double>(row.params + row.state_params) * 4.0 / 1e6;
    row.test = results[i].test;
    const Scores& s = row.test;
    table += row.model + "," + trainings[i].name + "," + std::to_string(row.params) + "," +
             std::to_string(row.state_params) + "," + csv_number(row.size_mb) + "," +
             field(s.has_cls, s.acc) + "," + field(s.has_cls, s.sen) + "," +
             field(s.has_cls, s.spe) + "," + field(s.has_cls, s.auc) + "," +
             field(s.has_seg, s.dsc) + "," + field(s.has_seg, s.iou) + "\n";
    report.rows.push_back(row);
  }
  write_file_atomic(spec.job_dir / kAblationCsv, table);

  const std::vector<std::string> ids = test_image_ids(results[0].dir);
  report.same_test_images =
      test_image_ids(results[1].dir) == ids && test_image_ids(results[2].dir) == ids;

  std::string md = "# Ablation (the paper's Table 1)\n\n";
  md += "| model | size (MB) | params (M) | ACC % | SEN % | SPE % | DSC | IoU |\n";
  md += "|---|---|---|---|---|---|---|---|\n";
  for (const AblationRow& r : report.rows) {
    const Scores& s = r.test;
    md += "| " + r.model + " | " + format_number("%.1f", r.size_mb) + " | " +
          format_number("%.2f", static_cast<double>(r.params) / 1e6) + " | " + percent(s, s.acc) +
          " | " + percent(s, s.sen) + " | " + percent(s, s.spe) + " | " + fraction(s, s.dsc) +
          " | " + fraction(s, s.iou) + " |\n";
  }
  md += "\n";
  const nlohmann::json& m0 = results[0].metrics;
  md += "Test split: " + std::to_string(ids.size()) + " images" +
        (report.same_test_images ? ", the same for the three models"
                                 : "; **WARNING: the three models were tested on different "
                                   "images, the rows are not comparable**") +
        ". Data: " + (m0.contains("data") ? m0["data"].get<std::string>() : "?") + ".\n\n";
  const int64_t singles = report.rows[1].params + report.rows[2].params;
  if (singles > 0) {
    md += "EMT-Net has " +
          format_number("%.1f", 100.0 * static_cast<double>(report.rows[0].params) /
                                    static_cast<double>(singles)) +
          "% of the parameters of Single-CLF + Single-SGM together (the paper: 61.5%).\n\n";
  }
  md +=
      "Size: fp32 weights and batch-norm statistics, 1 MB = 10^6 bytes. Params: trainable. "
      "\"-\": the model has no such head; \"n/a\": undefined on this test split. Runs: ";
  for (size_t i = 0; i < trainings.size(); ++i) md += (i ? ", " : "") + trainings[i].name + "/";
  md += "; full-precision numbers in " + std::string(kAblationCsv) + ".\n";
  report.markdown = md;
  write_file_atomic(spec.job_dir / kAblationMarkdown, md);

  if (!report.same_test_images)
    say(options, "WARNING: the three models were tested on different images");
  say(options, md);
  return report;
}

// ---------------------------------------------------------------------------------------------

WeightGridReport weight_grid(const WeightGridSpec& spec, const JobOptions& options) {
  check_values(spec.wp_values, "weight_grid W_p values");
  check_values(spec.wc_values, "weight_grid W_c values");
  const GraphFile probe = parse_graph_file(spec.graph, spec.overrides);
  claim_job_dir(spec.job_dir, {{"experiment", "weight_grid"},
                               {"graph", job_path(spec.graph)},
                               {"overrides", spec.overrides},
                               {"wp_values", spec.wp_values},
                               {"wc_values", spec.wc_values}});
  std::vector<TrainingSpec> trainings;
  for (double wp : spec.wp_values) {
    for (double wc : spec.wc_values) {
      TrainingSpec t;
      t.name = "wp" + value_label(wp) + "_wc" + value_label(wc);
      t.label = "wp=" + value_label(wp) + " wc=" + value_label(wc);
      t.graph = spec.graph;
      t.overrides = spec.overrides;
      t.overrides.push_back(float_assignment("objective.w_p", wp));
      t.overrides.push_back(float_assignment("objective.w_c", wc));
      trainings.push_back(std::move(t));
    }
  }
  const std::vector<TrainingResult> results = run_trainings(spec.job_dir, trainings, options);

  WeightGridReport report;
  std::string table =
      "wp,wc,acc,sen,spe,auc,dsc,iou,val_acc,val_sen,val_spe,val_auc,val_dsc,val_iou\n";
  const size_t cols = spec.wc_values.size();
  HeatPanel sen{"SEN", {}}, spe{"SPE", {}};
  double best = -1;
  for (size_t i = 0; i < results.size(); ++i) {
    const WeightGridRow row{spec.wp_values[i / cols], spec.wc_values[i % cols], results[i].dir,
                            results[i].test, results[i].val};
    const Scores &t = row.test, &v = row.val;
    table += value_label(row.wp) + "," + value_label(row.wc) + "," + csv_number(t.acc) + "," +
             csv_number(t.sen) + "," + csv_number(t.spe) + "," + csv_number(t.auc) + "," +
             csv_number(t.dsc) + "," + csv_number(t.iou) + "," + csv_number(v.acc) + "," +
             csv_number(v.sen) + "," + csv_number(v.spe) + "," + csv_number(v.auc) + "," +
             csv_number(v.dsc) + "," + csv_number(v.iou) + "\n";
    if (i % cols == 0) {
      sen.values.emplace_back();
      spe.values.emplace_back();
    }
    sen.values.back().push_back(t.sen);
    spe.values.back().push_back(t.spe);
    const double balanced = (v.sen + v.spe) / 2;
    if (std::isfinite(balanced) && balanced > best) {
      best = balanced;
      report.best_on_val = static_cast<int>(i);
    }
    report.rows.push_back(row);
  }
  write_file_atomic(spec.job_dir / kGridCsv, table);
  const std::vector<HeatPanel> panels = {sen, spe};
  write_png(spec.job_dir / kGridPlot,
            heat_maps(probe.graph.name + ": test SEN and SPE by W_p and W_c", panels,
                      spec.wp_values, "W_p", spec.wc_values, "W_c"));

  if (report.best_on_val >= 0) {
    const WeightGridRow& b = report.rows[static_cast<size_t>(report.best_on_val)];
    say(options, "best on validation ((sen + spe) / 2 = " + format_number("%.3f", best) +
                     "): wp=" + value_label(b.wp) + " wc=" + value_label(b.wc) + "; its test acc " +
                     format_number("%.3f", b.test.acc) + " sen " +
                     format_number("%.3f", b.test.sen) + " spe " +
                     format_number("%.3f", b.test.spe) + " dsc " +
                     format_number("%.3f", b.test.dsc));
  }
  say(options, "wrote " + (spec.job_dir / kGridCsv).string() + " and " + std::string(kGridPlot));
  return report;
}

}  // namespace emt
