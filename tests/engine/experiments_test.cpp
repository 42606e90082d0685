// The experiment pipelines on tiny graphs and 40 phantoms: the tables they write agree with the
// per-image results of each training, the ablation table has the paper's shape, and a job run
// again after an interruption redoes only the unfinished training.
#include "engine/experiments/experiments.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "engine/compiler/program.h"
#include "engine/data/dataset.h"
#include "engine/dsl/config.h"
#include "engine/dsl/parser.h"
#include "engine/experiments/charts.h"
#include "engine/experiments/job.h"
#include "engine/io/atomic_file.h"
#include "engine/runtime/threading.h"
#include "engine/train/run.h"
#include "tests/engine/run_tables.h"
#include "tests/engine/temp_dir_test.h"
#include "tests/engine/text_files.h"
#include "tests/engine/tiny_graph.h"

namespace {

namespace fs = std::filesystem;
using emt::test::count;
using emt::test::Csv;
using emt::test::expect_auc;
using emt::test::expect_field;
using emt::test::kSmallData;
using emt::test::kTinyGraph;
using emt::test::read_csv;
using emt::test::recompute;
using emt::test::Recomputed;
using emt::test::snapshot;
using emt::test::split;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The encoder and classifier of kTinyGraph (the two-headed network) alone. The file's own input
// size and learning rate differ from the EMT-Net file's: the ablation must run it with EMT-Net's
// settings.
constexpr std::string_view kTinyClf = R"toml(
[graph]
name = "tiny_clf"
inputs = { image = [1, "${data.input_size}", "${data.input_size}"] }
targets = { label = [1] }
outputs = { cls = "cls_prob" }
nodes = [
  { op = "conv2d", name = "c1", in = "image", out = 8, kernel = 3, bias = false },
  { op = "batch_norm", name = "bn1" },
  { op = "relu", name = "r1" },
  { op = "conv2d", name = "c2", out = 16, kernel = 3, stride = 2, bias = false },
  { op = "batch_norm", name = "bn2" },
  { op = "relu", name = "r2" },
  { op = "conv2d", name = "c3", out = 16, kernel = 3, stride = 2, bias = false },
  { op = "batch_norm", name = "bn3" },
  { op = "relu", name = "r3" },
  { op = "global_avg_pool", name = "gap" },
  { op = "dense", name = "fc", out = 16 },
  { op = "relu", name = "fc_relu" },
  { op = "dense", name = "cls_logit", out = 1 },
  { op = "sigmoid", name = "cls_prob" },
]

[objective]
terms = [
  { loss = "weighted_bce", input = "cls_logit", target = "label", pos_weight = "${objective.w_p}", weight = "${objective.w_c}" },
]

[data]
input_size = 48

[train]
lr = 0.5
)toml";

// Its encoder and decoder alone.
constexpr std::string_view kTinySgm = R"toml(
[graph]
name = "tiny_sgm"
inputs = { image = [1, "${data.input_size}", "${data.input_size}"] }
targets = { mask = [1, "${data.input_size}", "${data.input_size}"] }
outputs = { seg = "seg_prob" }
nodes = [
  { op = "conv2d", name = "c1", in = "image", out = 8, kernel = 3, bias = false },
  { op = "batch_norm", name = "bn1" },
  { op = "relu", name = "r1" },
  { op = "conv2d", name = "c2", out = 16, kernel = 3, stride = 2, bias = false },
  { op = "batch_norm", name = "bn2" },
  { op = "relu", name = "r2" },
  { op = "conv2d", name = "c3", out = 16, kernel = 3, stride = 2, bias = false },
  { op = "batch_norm", name = "bn3" },
  { op = "relu", name = "r3" },
  { op = "conv_transpose2d", name = "u3", out = 16, kernel = 3, stride = 2, pad = 1, output_pad = 1, bias = false },
  { op = "batch_norm", name = "ubn3" },
  { op = "relu", name = "ur3" },
  { op = "add", name = "s2", in = ["ur3", "r2"] },
  { op = "conv_transpose2d", name = "u2", out = 8, kernel = 3, stride = 2, pad = 1, output_pad = 1, bias = false },
  { op = "batch_norm", name = "ubn2" },
  { op = "relu", name = "ur2" },
  { op = "add", name = "s1", in = ["ur2", "r1"] },
  { op = "conv2d", name = "seg_logit", out = 1, kernel = 3 },
  { op = "sigmoid", name = "seg_prob" },
]

[objective]
terms = [
  { loss = "dice", input = "seg_prob", target = "mask", weight = 1.0 },
]

[data]
input_size = 48
)toml";

// The shared small-data settings, with one epoch per training.
const std::vector<std::string> kSmall = [] {
  std::vector<std::string> settings = kSmallData;
  settings.push_back("train.epochs=1");
  return settings;
}();

void expect_png(const fs::path& path, int min_width, int min_height) {
  ASSERT_TRUE(fs::is_regular_file(path)) << path;
  EXPECT_GT(fs::file_size(path), 0u) << path;
  const cv::Mat image = cv::imread(path.string(), cv::IMREAD_COLOR);
  ASSERT_FALSE(image.empty()) << path << " does not decode";
  EXPECT_GE(image.cols, min_width) << path;
  EXPECT_GE(image.rows, min_height) << path;
}

// A number setting of a run, as its config.toml records it: "<key> = <value>  # from ...".
double setting(const fs::path& run, const std::string& key) {
  const std::string config = emt::read_file(run / emt::kConfigFile);
  const size_t at = config.find("\n" + key + " = ");
  if (at == std::string::npos) {
    ADD_FAILURE() << key << " missing from " << run / emt::kConfigFile;
    return kNaN;
  }
  return std::stod(config.substr(at + key.size() + 4));
}

class ExperimentTest : public emt::test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    emt::init_threading(2);
  }
};

// ---------------------------------------------------------------------------------------------
// W_p sweep

using ExperimentWpSweep = ExperimentTest;

TEST_F(ExperimentWpSweep, TablesAndPlotMatchEachTrainingsPerImageResults) {
  const emt::WpSweepSpec spec{.graph = write("clf.toml", kTinyClf),
                              .overrides = kSmall,
                              .job_dir = dir_ / "job",
                              .values = {1, 4},
                              .folds = 2};
  std::ostringstream console;
  const emt::WpSweepReport report = emt::wp_sweep(spec, {.console = &console});
  const std::string log = console.str();
  EXPECT_NE(log.find("[1/4] wp=1.0 fold 1/2"), std::string::npos) << log;
  EXPECT_NE(log.find("[4/4] wp=4.0 fold 2/2"), std::string::npos) << log;

  const Csv table = read_csv(spec.job_dir / emt::kWpSweepCsv);
  ASSERT_EQ(table.header, (std::vector<std::string>{"wp", "fold", "acc", "sen", "spe", "auc"}));
  ASSERT_EQ(table.rows.size(), 4u);
  ASSERT_EQ(report.rows.size(), 4u);
  std::map<int, std::vector<std::string>> test_ids;  // per fold
  for (size_t i = 0; i < table.rows.size(); ++i) {
    const std::string wp = table.at(i, "wp"), fold = table.at(i, "fold");
    EXPECT_EQ(wp, i < 2 ? "1.0" : "4.0");
    EXPECT_EQ(fold, std::to_string(i % 2 + 1));
    const fs::path run = spec.job_dir / ("wp" + wp + "_fold" + fold);
    EXPECT_EQ(report.rows[i].dir, run);
    const Recomputed r = recompute(run);
    const std::string what = "wp " + wp + " fold " + fold;
    expect_field(table.number(i, "acc"), r.acc, what + " acc");
    expect_field(table.number(i, "sen"), r.sen, what + " sen");
    expect_field(table.number(i, "spe"), r.spe, what + " spe");
    expect_auc(table.number(i, "auc"), r, what + " auc");
    // The protocol: with 2 folds, k = 4 parts of 10 images; each fold tests on one part.
    EXPECT_EQ(r.n, 10u) << what;
    const nlohmann::json metrics = nlohmann::json::parse(emt::read_file(run / emt::kMetricsFile));
    EXPECT_NE(
        metrics["data"].get<std::string>().find("fold " + std::to_string(2 * (i % 2)) + " of 4"),
        std::string::npos)
        << metrics["data"];
    std::vector<std::string>& ids = test_ids[static_cast<int>(i % 2)];
    if (ids.empty()) {
      ids = r.ids;
    } else {
      EXPECT_EQ(r.ids, ids) << what << ": every W_p must be tested on the fold's images";
    }
  }
  std::set<std::string> fold1(test_ids[0].begin(), test_ids[0].end());
  for (const std::string& id : test_ids[1])
    EXPECT_EQ(fold1.count(id), 0u) << id << " is tested in both folds";

  const Csv means = read_csv(spec.job_dir / emt::kWpSweepMeanCsv);
  ASSERT_EQ(means.rows.size(), 2u);
  EXPECT_EQ(means.header.at(0), "wp");
  for (size_t m = 0; m < 2; ++m) {
    for (const char* metric : {"acc", "sen", "spe", "auc"}) {
      std::vector<double> defined;
      for (size_t i = 2 * m; i < 2 * m + 2; ++i)
        if (!std::isnan(table.number(i, metric))) defined.push_back(table.number(i, metric));
      const double want = defined.empty()       ? kNaN
                          : defined.size() == 1 ? defined[0]
                                                : (defined[0] + defined[1]) / 2;
      if (std::isnan(want)) {
        EXPECT_TRUE(std::isnan(means.number(m, metric))) << metric;
      } else {
        EXPECT_NEAR(means.number(m, metric), want, 2e-6) << metric << " mean, row " << m;
      }
    }
  }
  expect_png(spec.job_dir / emt::kWpSweepPlot, 400, 300);
}

TEST_F(ExperimentWpSweep, AnInterruptedSweepRedoesOnlyItsLastTraining) {
  const emt::WpSweepSpec spec{.graph = write("clf.toml", kTinyClf),
                              .overrides = kSmall,
                              .job_dir = dir_ / "job",
                              .values = {1, 4},
                              .folds = 2};
  emt::wp_sweep(spec);
  const std::string table = emt::read_file(spec.job_dir / emt::kWpSweepCsv);
  const fs::path last = spec.job_dir / "wp4.0_fold2";
  std::map<std::string, std::map<std::string, std::string>> before;
  for (const char* name : {"wp1.0_fold1", "wp1.0_fold2", "wp4.0_fold1"})
    before[name] = snapshot(spec.job_dir / name);
  const std::string history = emt::read_file(last / emt::kHistoryFile);
  fs::remove(last / emt::kMetricsFile);

  std::ostringstream console;
  emt::wp_sweep(spec, {.console = &console});
  const std::string log = console.str();
  EXPECT_EQ(count(log, "finished before"), 3u) << log;
  EXPECT_NE(log.find("[4/4] wp=4.0 fold 2/2: resuming from its checkpoint"), std::string::npos)
      << log;
  for (const auto& [name, files] : before)
    EXPECT_EQ(snapshot(spec.job_dir / name), files) << name << " was redone";
  EXPECT_NE(emt::read_file(last / emt::kLogFile).find("resumed from"), std::string::npos);
  EXPECT_EQ(emt::read_file(last / emt::kHistoryFile), history) << "the finished epochs re-ran";
  EXPECT_EQ(emt::read_file(spec.job_dir / emt::kWpSweepCsv), table);
}

// The split the sweep's folds rely on: the even folds of data.folds = 8 hold out the four
// quarters of the data, each halved into validation and test, and train on the other 75%.
TEST(ExperimentFolds, EvenFoldsOfEightAreThePapersFourFolds) {
  std::multiset<int> held_out;
  for (int fold : {0, 2, 4, 6}) {
    emt::Config config;
    for (const std::string& o : kSmall) config.set_from_assignment(o);
    config.set_from_assignment("data.folds=8");
    config.set_from_assignment("data.fold=" + std::to_string(fold));
    const emt::Dataset data = emt::load_dataset(config, 1);
    EXPECT_EQ(data.split.train.size(), 30u) << "fold " << fold;
    EXPECT_EQ(data.split.val.size(), 5u) << "fold " << fold;
    EXPECT_EQ(data.split.test.size(), 5u) << "fold " << fold;
    held_out.insert(data.split.val.begin(), data.split.val.end());
    held_out.insert(data.split.test.begin(), data.split.test.end());
    EXPECT_NE(data.description.find("fold " + std::to_string(fold) + " of 8"), std::string::npos)
        << data.description;
  }
  EXPECT_EQ(held_out.size(), 40u);
  EXPECT_EQ(std::set<int>(held_out.begin(), held_out.end()).size(), 40u)
      << "an image is held out by two folds";

  emt::Config config;
  for (const std::string& o : kSmall) config.set_from_assignment(o);
  config.set_from_assignment("data.folds=8");
  config.set_from_assignment("data.fold=8");
  EXPECT_THROW(emt::load_dataset(config, 1), emt::GraphError);
}

TEST_F(ExperimentWpSweep, BadValuesAreRefusedBeforeAnyTraining) {
  const fs::path graph = write("clf.toml", kTinyClf);
  EXPECT_THROW(
      emt::wp_sweep(
          {.graph = graph, .overrides = kSmall, .job_dir = dir_ / "a", .values = {1, 1.0}}),
      std::invalid_argument);
  EXPECT_THROW(
      emt::wp_sweep({.graph = graph, .overrides = kSmall, .job_dir = dir_ / "b", .values = {0}}),
      std::invalid_argument);
  EXPECT_THROW(
      emt::wp_sweep({.graph = graph, .overrides = kSmall, .job_dir = dir_ / "c", .folds = 1}),
      std::invalid_argument);
  EXPECT_FALSE(fs::exists(dir_ / "a"));
  EXPECT_FALSE(fs::exists(dir_ / "b"));
  EXPECT_FALSE(fs::exists(dir_ / "c"));
}

// ---------------------------------------------------------------------------------------------
// Ablation

using ExperimentAblation = ExperimentTest;

TEST_F(ExperimentAblation, TableHasThePapersRowsAndColumnsOnOneSplit) {
  const emt::AblationSpec spec{.emtnet = write("emt.toml", kTinyGraph),
                               .single_clf = write("clf.toml", kTinyClf),
                               .single_sgm = write("sgm.toml", kTinySgm),
                               .overrides = kSmall,
                               .job_dir = dir_ / "job"};
  std::ostringstream console;
  const emt::AblationReport report = emt::ablation(spec, {.console = &console});
  EXPECT_NE(console.str().find("[3/3] Single-SGM"), std::string::npos) << console.str();
  EXPECT_TRUE(report.same_test_images);

  // The Markdown table: header, rule, one row per model, 8 columns each.
  const std::string md = emt::read_file(spec.job_dir / emt::kAblationMarkdown);
  EXPECT_EQ(md, report.markdown);
  std::vector<std::vector<std::string>> rows;
  for (const std::string& line : split(md, '\n')) {
    if (line.empty() || line[0] != '|') continue;
    std::vector<std::string> cells;
    for (const std::string& cell : split(line.substr(1), '|')) {
      const size_t a = cell.find_first_not_of(' '), b = cell.find_last_not_of(' ');
      cells.push_back(a == std::string::npos ? "" : cell.substr(a, b - a + 1));
    }
    rows.push_back(cells);
  }
  ASSERT_EQ(rows.size(), 5u) << md;
  EXPECT_EQ(rows[0], (std::vector<std::string>{"model", "size (MB)", "params (M)", "ACC %", "SEN %",
                                               "SPE %", "DSC", "IoU"}));
  for (const auto& row : rows) EXPECT_EQ(row.size(), 8u) << md;
  EXPECT_EQ(rows[2][0], "EMT-Net");
  EXPECT_EQ(rows[3][0], "Single-CLF");
  EXPECT_EQ(rows[4][0], "Single-SGM");
  for (size_t c = 3; c < 8; ++c) EXPECT_NE(rows[2][c], "-") << "EMT-Net has both heads";
  for (size_t c = 3; c < 6; ++c) EXPECT_NE(rows[3][c], "-");
  for (size_t c = 6; c < 8; ++c) EXPECT_EQ(rows[3][c], "-") << "Single-CLF has no mask";
  for (size_t c = 3; c < 6; ++c) EXPECT_EQ(rows[4][c], "-") << "Single-SGM has no classifier";
  for (size_t c = 6; c < 8; ++c) EXPECT_NE(rows[4][c], "-");

  // Params as compile() counts them, and the scores of each run's metrics.json.
  const Csv csv = read_csv(spec.job_dir / emt::kAblationCsv);
  ASSERT_EQ(csv.rows.size(), 3u);
  const std::vector<fs::path> graphs = {spec.emtnet, spec.single_clf, spec.single_sgm};
  for (size_t i = 0; i < 3; ++i) {
    const emt::GraphFile file = emt::parse_graph_file(graphs[i], kSmall);
    const emt::Program program = emt::compile(std::make_shared<const emt::Graph>(file.graph), 1);
    EXPECT_EQ(report.rows[i].params, program.trainable_param_count()) << i;
    EXPECT_EQ(csv.at(i, "params"), std::to_string(program.trainable_param_count())) << i;
    char cell[32];
    std::snprintf(cell, sizeof cell, "%.2f",
                  static_cast<double>(program.trainable_param_count()) / 1e6);
    EXPECT_EQ(rows[i + 2][2], cell);
    const Recomputed r = recompute(report.rows[i].dir);
    if (report.rows[i].test.has_cls) {
      expect_field(csv.number(i, "acc"), r.acc, rows[i + 2][0] + " acc");
      std::snprintf(cell, sizeof cell, "%.1f", 100 * r.acc);
      EXPECT_EQ(rows[i + 2][3], cell);
    }
  }
  EXPECT_LT(report.rows[0].params, report.rows[1].params + report.rows[2].params)
      << "EMT-Net's two heads share one encoder";

  // The single-task runs used the EMT-Net file's settings (input 32, not their own 48).
  const auto data_of = [&](const char* run) {
    return nlohmann::json::parse(emt::read_file(spec.job_dir / run / emt::kMetricsFile))["data"];
  };
  EXPECT_EQ(data_of("single_clf"), data_of("emt_net"));
  EXPECT_EQ(data_of("single_sgm"), data_of("emt_net"));
  EXPECT_NE(data_of("emt_net").get<std::string>().find("32x32"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Weight grid and the job machinery

using ExperimentWeightGrid = ExperimentTest;

TEST_F(ExperimentWeightGrid, GridTableAndHeatMapsMatchEachTrainingsPerImageResults) {
  const emt::WeightGridSpec spec{.graph = write("emt.toml", kTinyGraph),
                                 .overrides = kSmall,
                                 .job_dir = dir_ / "job",
                                 .wp_values = {1, 2.5},
                                 .wc_values = {1, 3}};
  std::ostringstream console;
  const emt::WeightGridReport report = emt::weight_grid(spec, {.console = &console});
  EXPECT_NE(console.str().find("[2/4] wp=1.0 wc=3.0"), std::string::npos) << console.str();
  ASSERT_EQ(report.rows.size(), 4u);
  EXPECT_GE(report.best_on_val, 0);
  EXPECT_LT(report.best_on_val, 4);

  const Csv grid = read_csv(spec.job_dir / emt::kGridCsv);
  ASSERT_EQ(grid.rows.size(), 4u);
  const std::vector<std::string> names = {"wp1.0_wc1.0", "wp1.0_wc3.0", "wp2.5_wc1.0",
                                          "wp2.5_wc3.0"};
  for (size_t i = 0; i < 4; ++i) {
    const fs::path run = spec.job_dir / names[i];
    EXPECT_EQ(report.rows[i].dir, run);
    EXPECT_EQ("wp" + grid.at(i, "wp") + "_wc" + grid.at(i, "wc"), names[i]);
    const Recomputed r = recompute(run);
    expect_field(grid.number(i, "acc"), r.acc, names[i] + " acc");
    expect_field(grid.number(i, "sen"), r.sen, names[i] + " sen");
    expect_field(grid.number(i, "spe"), r.spe, names[i] + " spe");
    expect_auc(grid.number(i, "auc"), r, names[i] + " auc");
    const nlohmann::json metrics = nlohmann::json::parse(emt::read_file(run / emt::kMetricsFile));
    expect_field(grid.number(i, "dsc"), metrics["dsc"].get<double>(), names[i] + " dsc");
    EXPECT_EQ(setting(run, "w_c"), i % 2 ? 3.0 : 1.0) << names[i];
    EXPECT_EQ(setting(run, "w_p"), i < 2 ? 1.0 : 2.5) << names[i];
  }
  expect_png(spec.job_dir / emt::kGridPlot, 300, 150);
}

TEST_F(ExperimentWeightGrid, AnInterruptedJobResumesTheUnfinishedTrainingAndRestartsTheUnstarted) {
  const emt::WeightGridSpec spec{.graph = write("emt.toml", kTinyGraph),
                                 .overrides = kSmall,
                                 .job_dir = dir_ / "job",
                                 .wp_values = {1, 2},
                                 .wc_values = {1, 2}};
  emt::weight_grid(spec);
  const std::string grid = emt::read_file(spec.job_dir / emt::kGridCsv);
  std::map<std::string, std::map<std::string, std::string>> before;
  for (const char* name : {"wp1.0_wc1.0", "wp2.0_wc1.0"})
    before[name] = snapshot(spec.job_dir / name);
  // Killed while evaluating the last training, and before the third had saved an epoch.
  const fs::path last = spec.job_dir / "wp2.0_wc2.0";
  const std::string history = emt::read_file(last / emt::kHistoryFile);
  fs::remove(last / emt::kMetricsFile);
  const fs::path unstarted = spec.job_dir / "wp1.0_wc2.0";
  fs::remove_all(unstarted);
  fs::create_directories(unstarted);
  emt::write_file_atomic(unstarted / emt::kLogFile, "data: ...\n");

  std::ostringstream console;
  emt::weight_grid(spec, {.console = &console});
  const std::string log = console.str();
  EXPECT_EQ(count(log, "finished before"), 2u) << log;
  EXPECT_NE(log.find("[2/4] wp=1.0 wc=2.0: training in"), std::string::npos) << log;
  EXPECT_NE(log.find("[4/4] wp=2.0 wc=2.0: resuming from its checkpoint"), std::string::npos)
      << log;
  for (const auto& [name, files] : before)
    EXPECT_EQ(snapshot(spec.job_dir / name), files) << name << " was redone";
  EXPECT_NE(emt::read_file(last / emt::kLogFile).find("resumed from"), std::string::npos);
  EXPECT_EQ(emt::read_file(last / emt::kHistoryFile), history) << "the finished epochs re-ran";
  // Training is deterministic for a seed: the restarted run reproduces its first result.
  EXPECT_EQ(emt::read_file(spec.job_dir / emt::kGridCsv), grid);
}

TEST_F(ExperimentWeightGrid, AnotherJobInTheSameDirectoryIsRefused) {
  const fs::path graph = write("emt.toml", kTinyGraph);
  emt::WeightGridSpec spec{.graph = graph,
                           .overrides = kSmall,
                           .job_dir = dir_ / "job",
                           .wp_values = {1},
                           .wc_values = {1}};
  emt::weight_grid(spec);
  spec.wc_values = {1, 2};
  try {
    emt::weight_grid(spec);
    ADD_FAILURE() << "a grid of other values must not reuse the job directory";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("holds another job"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(spec.job_dir / "wp1.0_wc2.0"));
}

// ---------------------------------------------------------------------------------------------
// Figures and labels

TEST(ExperimentCharts, DrawTheGivenDataAndRefuseMismatchedShapes) {
  const std::vector<double> x = {1, 1.5, 2, 10};
  const std::vector<emt::ChartSeries> series = {{"ACC", {0.8, 0.82, kNaN, 0.7}, {0.01, 0, 0, 0}},
                                                {"SEN", {0.6, 0.7, 0.8, 0.95}, {}}};
  const cv::Mat chart = emt::line_chart("t", "x", "y", x, series);
  EXPECT_EQ(chart.cols, 720);
  EXPECT_EQ(chart.rows, 500);
  const std::vector<emt::ChartSeries> short_series = {{"ACC", {0.8}, {}}};
  EXPECT_THROW(emt::line_chart("t", "x", "y", x, short_series), std::invalid_argument);

  const std::vector<double> rows = {1, 2}, cols = {1, 2, 3};
  const std::vector<emt::HeatPanel> panels = {{"SEN", {{0.1, 0.5, 0.9}, {kNaN, 1, 0}}},
                                              {"SPE", {{0.1, 0.5, 0.9}, {0.2, 1, 0}}}};
  const cv::Mat heat = emt::heat_maps("t", panels, rows, "W_p", cols, "W_c");
  EXPECT_GT(heat.cols, 2 * 3 * 64);
  EXPECT_GT(heat.rows, 2 * 40);
  const std::vector<emt::HeatPanel> ragged = {{"SEN", {{0.1, 0.5}, {0.2, 1, 0}}}};
  EXPECT_THROW(emt::heat_maps("t", ragged, rows, "W_p", cols, "W_c"), std::invalid_argument);
}

TEST(ExperimentLabels, ValuesPrintShortAndParseBackExactly) {
  EXPECT_EQ(emt::value_label(2), "2.0");
  EXPECT_EQ(emt::value_label(10), "10.0");
  EXPECT_EQ(emt::value_label(1.5), "1.5");
  EXPECT_EQ(emt::value_label(1.25), "1.25");
  EXPECT_EQ(emt::float_assignment("objective.w_p", 2.5), "objective.w_p=2.5");
  EXPECT_EQ(emt::float_assignment("objective.w_p", 0.1), "objective.w_p=0.1");
  EXPECT_EQ(emt::paper_wp_values().size(), 14u);
  EXPECT_EQ(emt::paper_weight_values().size(), 5u);
}

}  // namespace
