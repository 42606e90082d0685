// `engine experiment KIND [GRAPH]`: the paper's experiments, one training after another into a
// job directory (engine/experiments/).
#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>

#include "engine/experiments/cv.h"
#include "engine/experiments/experiments.h"
#include "tools/engine/commands/commands.h"
#include "tools/engine/options.h"

namespace emt::cli {
namespace {

namespace fs = std::filesystem;

// The graph each experiment of the paper uses, when the command line names none.
const std::map<std::string, std::string>& default_graphs() {
  static const std::map<std::string, std::string> graphs = {{"wp-sweep", "graphs/single_clf.toml"},
                                                            {"ablation", "graphs/emtnet.toml"},
                                                            {"grid", "graphs/emtnet.toml"},
                                                            {"cv", "graphs/emtnet.toml"}};
  return graphs;
}

struct ExperimentArgs {
  std::string kind, graph, out;
  std::vector<std::string> sets;
  std::vector<double> wp_values, wc_values;  // empty: the paper's
  int folds = 4, seeds = 1;
  std::optional<double> target_sensitivity;
  Backend backend = Backend::kOnednn;
};

// The job records its settings to recognise itself on resume: a dataset path must not depend
// on the working directory.
std::vector<std::string> absolute_data_source(const std::vector<std::string>& sets) {
  std::vector<std::string> overrides;
  const std::string key = "data.source=";
  for (const std::string& set : sets) {
    if (set.rfind(key, 0) == 0 && set.substr(key.size()) != "phantom")
      overrides.push_back(key + fs::absolute(set.substr(key.size())).string());
    else
      overrides.push_back(set);
  }
  return overrides;
}

void run_experiment(const ExperimentArgs& args) {
  const std::vector<std::string> overrides = absolute_data_source(args.sets);
  const JobOptions job{args.backend, &std::cout, false};
  const fs::path graph = args.graph.empty() ? default_graphs().at(args.kind) : args.graph;
  const fs::path out = args.out;
  if (args.kind == "wp-sweep") {
    WpSweepSpec spec{graph, overrides, out};
    if (!args.wp_values.empty()) spec.values = args.wp_values;
    spec.folds = args.folds;
    wp_sweep(spec, job);
  } else if (args.kind == "ablation") {
    // emtnet<S>.toml trains beside single_clf<S>.toml and single_sgm<S>.toml: the baselines
    // share its backbone's semantics (emtnet_pretrained.toml: ReLU6, TF SAME padding).
    const std::string stem = graph.stem().string();
    const std::string suffix = stem.rfind("emtnet", 0) == 0 ? stem.substr(6) : "";
    const fs::path dir = graph.parent_path();
    ablation({graph, dir / ("single_clf" + suffix + ".toml"),
              dir / ("single_sgm" + suffix + ".toml"), overrides, out},
             job);
  } else if (args.kind == "cv") {
    CvSpec spec{graph, overrides, out};
    spec.folds = args.folds;
    spec.seeds = args.seeds;
    if (args.target_sensitivity) spec.target_sensitivity = *args.target_sensitivity;
    cross_validation(spec, job);
  } else {
    WeightGridSpec spec{graph, overrides, out};
    if (!args.wp_values.empty()) spec.wp_values = args.wp_values;
    if (!args.wc_values.empty()) spec.wc_values = args.wc_values;
    weight_grid(spec, job);
  }
}

// --values/--wp and --wc: a list replaces the paper's values.
void add_values(CLI::App& app, const std::string& names, std::vector<double>& values,
                const std::string& help) {
  app.add_option_function<std::string>(
         names, [&values](const std::string& text) { values = parse_numbers(text); }, help)
      ->type_name("LIST")
      ->check(positive_numbers());
}

CommandRun define(CLI::App& app) {
  auto args = std::make_shared<ExperimentArgs>();
  app.add_option("KIND", args->kind, "wp-sweep, ablation, grid or cv")
      ->required()
      ->check(one_of({"wp-sweep", "ablation", "grid", "cv"}));
  app.add_option("GRAPH", args->graph,
                 "the graph file (default: graphs/single_clf.toml for wp-sweep, else "
                 "graphs/emtnet.toml)");
  app.add_option("-o,--out", args->out, "the job directory (re-running the command resumes it)")
      ->type_name("DIR")
      ->required();
  add_settings(app, args->sets);
  add_values(app, "--values,--wp", args->wp_values,
             "wp-sweep and grid: the W_p values, e.g. 1,2,4 (default: the paper's)");
  add_values(app, "--wc", args->wc_values, "grid: the W_c values (default: the paper's)");
  app.add_option("--folds", args->folds, "wp-sweep and cv: cross-validation folds (default 4)")
      ->type_name("K")
      ->check(positive_integer());
  app.add_option("--seeds", args->seeds,
                 "cv: trainings per fold, train.seed counting up from the graph's (default 1)")
      ->type_name("S")
      ->check(positive_integer());
  app.add_option_function<double>(
         "--target-sensitivity", [args](double s) { args->target_sensitivity = s; },
         "cv: every run's target (eval.target_sensitivity, default 0.9)")
      ->type_name("S")
      ->check(number_in(0, 1, true));
  add_backend(app, args->backend);
  return [args](const CommonArgs&) { run_experiment(*args); };
}

}  // namespace

Command experiment_command() {
  return {"experiment", "the paper's experiments: wp-sweep, ablation, grid, cv",
          "the paper's experiments, one training after another into a job directory (re-running "
          "the command resumes it): wp-sweep (Single-CLF over W_p with 4-fold cross-validation; "
          "--values, --folds; wp_sweep.csv/.png), ablation (EMT-Net vs Single-CLF vs Single-SGM "
          "on one split; ablation.md; for GRAPH emtnet<S>.toml the baselines are "
          "single_clf<S>.toml and single_sgm<S>.toml beside it, e.g. single_clf_pretrained.toml), "
          "grid (W_p x W_c, --wp, --wc; grid.csv, grid.png heat maps of SEN and SPE) and cv "
          "(--folds K x --seeds S trainings, train.seed counting up from the graph's; each run "
          "chooses its epoch and, for sensitivity --target-sensitivity (default 0.9), its "
          "threshold on its fold's val part and scores its test part once; cv_runs.csv, "
          "cv_summary.csv/.json with mean, sd and 95% t interval of ACC/SEN/SPE/AUC/DSC/IoU, "
          "cv_report.md, pooled_roc.csv: each seed's out-of-fold test ROC)",
          define};
}

}  // namespace emt::cli
