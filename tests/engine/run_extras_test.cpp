// `engine run` beyond the basic run directory: early stopping (and its survival across
// --resume), the data-wait and throughput figures, the test split's bootstrap intervals, and the
// batch-norm calibration of initial weights.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "engine/dsl/parser.h"
#include "engine/eval/eval_command.h"
#include "engine/io/safetensors.h"
#include "engine/runtime/model.h"
#include "engine/runtime/threading.h"
#include "engine/train/checkpoint.h"
#include "engine/train/optimizer.h"
#include "engine/train/run.h"
#include "tests/engine/temp_dir_test.h"
#include "tests/engine/text_files.h"
#include "tests/engine/tiny_graph.h"

namespace {

namespace fs = std::filesystem;
using emt::test::kSmallData;
using emt::test::kTinyGraph;
using emt::test::read_text;
using emt::test::split;

// Both heads and no batch norm: trained at lr 0 its evaluation cannot change from epoch to
// epoch (nothing else moves), so every validation score after the first ties the first and
// none is an improvement. That makes the epoch early stopping must end at known in advance.
constexpr std::string_view kFrozenGraph = R"toml(
[graph]
name = "frozen"
inputs = { image = [1, "${data.input_size}", "${data.input_size}"] }
targets = { label = [1], mask = [1, "${data.input_size}", "${data.input_size}"] }
outputs = { cls = "cls_prob", seg = "seg_prob" }
nodes = [
  { op = "conv2d", name = "c1", in = "image", out = 4, kernel = 3 },
  { op = "relu", name = "r1" },
  { op = "conv2d", name = "seg_logit", out = 1, kernel = 3 },
  { op = "sigmoid", name = "seg_prob" },
  { op = "global_avg_pool", name = "gap", in = "r1" },
  { op = "dense", name = "cls_logit", out = 1 },
  { op = "sigmoid", name = "cls_prob" },
]

[objective]
terms = [
  { loss = "weighted_bce", input = "cls_logit", target = "label", pos_weight = "${objective.w_p}", weight = "${objective.w_c}" },
  { loss = "dice", input = "seg_prob", target = "mask", weight = 1.0 },
]

[data]
input_size = 32
)toml";

nlohmann::json read_json(const fs::path& path) { return nlohmann::json::parse(read_text(path)); }

std::vector<std::string> with(std::vector<std::string> settings,
                              const std::vector<std::string>& more) {
  settings.insert(settings.end(), more.begin(), more.end());
  return settings;
}

// history.csv's rows (header dropped), each split into its columns.
std::vector<std::vector<std::string>> history_rows(const fs::path& run) {
  std::vector<std::vector<std::string>> rows;
  const std::vector<std::string> lines = split(read_text(run / emt::kHistoryFile), '\n');
  for (size_t i = 1; i < lines.size(); ++i) rows.push_back(split(lines[i], ','));
  return rows;
}

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

class RunExtrasTest : public emt::test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    emt::init_threading(2);
  }
};

// ---------------------------------------------------------------------------------------------
// Early stopping

// Epoch 1 improves on nothing, epochs 2.. tie it: with patience 2 the run must end after epoch
// 3 of 6. Resuming it trains nothing; resuming with patience 4 continues from the saved count
// (2 epochs without improvement) and ends after epoch 5, as a fresh run with patience 4 does.
TEST_F(RunExtrasTest, EarlyStoppingEndsAtThePatienceAndSurvivesResume) {
  const std::vector<std::string> base = with(kSmallData, {"train.epochs=6", "train.lr=0"});
  const fs::path frozen = write("frozen.toml", kFrozenGraph);
  const emt::GraphFile file = emt::parse_graph_file(frozen, with(base, {"train.patience=2"}));
  const fs::path out = dir_ / "run";
  const emt::RunSummary summary = emt::run_pipeline(file, {.out_dir = out});

  const auto rows = history_rows(out);
  ASSERT_EQ(rows.size(), 3u) << read_text(out / emt::kHistoryFile);
  EXPECT_EQ(rows[1][4], rows[0][4]) << "the frozen graph's validation score moved";
  EXPECT_EQ(rows[2][4], rows[0][4]) << "the frozen graph's validation score moved";
  EXPECT_TRUE(summary.stopped_early);
  EXPECT_EQ(summary.best_epoch, 1);
  const std::string log = read_text(out / emt::kLogFile);
  EXPECT_NE(log.find("early stop after epoch 3: no better validation score for 2 epochs"),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("epoch 4/6"), std::string::npos) << log;
  const nlohmann::json metrics = read_json(out / emt::kMetricsFile);
  EXPECT_EQ(metrics["epochs_trained"], 3);
  EXPECT_EQ(metrics["stopped_early"], true);

  // Resuming the stopped run: no step, same history, the stop reported again.
  const std::string history = read_text(out / emt::kHistoryFile);
  const emt::RunSummary again = emt::run_pipeline(file, {.out_dir = out, .resume = true});
  EXPECT_TRUE(again.stopped_early);
  EXPECT_EQ(read_text(out / emt::kHistoryFile), history) << "the resumed run trained";
  const std::string appended = read_text(out / emt::kLogFile).substr(log.size());
  EXPECT_EQ(appended.find(" step "), std::string::npos) << appended;
  EXPECT_NE(appended.find("early stop after epoch 3"), std::string::npos) << appended;

  // More patience on resume: two more epochs, matching a fresh run with that patience.
  const emt::GraphFile patient = emt::parse_graph_file(frozen, with(base, {"train.patience=4"}));
  emt::run_pipeline(patient, {.out_dir = out, .resume = true});
  const fs::path fresh = dir_ / "fresh";
  emt::run_pipeline(patient, {.out_dir = fresh});
  const auto resumed_rows = history_rows(out);
  const auto fresh_rows = history_rows(fresh);
  ASSERT_EQ(fresh_rows.size(), 5u) << read_text(fresh / emt::kHistoryFile);
  ASSERT_EQ(resumed_rows.size(), 5u) << read_text(out / emt::kHistoryFile);
  for (size_t r = 0; r < 5; ++r) {
    EXPECT_EQ(resumed_rows[r][0], fresh_rows[r][0]);  // epoch
    EXPECT_EQ(resumed_rows[r][1], fresh_rows[r][1]);  // train loss
    EXPECT_EQ(resumed_rows[r][4], fresh_rows[r][4]);  // val score
  }
  EXPECT_NE(read_text(out / emt::kLogFile).find("early stop after epoch 5"), std::string::npos);

  // Patience running out with the last epoch is no early stop: every epoch ran.
  const fs::path full = dir_ / "full";
  const emt::RunSummary all = emt::run_pipeline(
      emt::parse_graph_file(frozen, with(base, {"train.epochs=3", "train.patience=2"})),
      {.out_dir = full});
  EXPECT_FALSE(all.stopped_early);
  EXPECT_EQ(history_rows(full).size(), 3u);
  EXPECT_EQ(read_text(full / emt::kLogFile).find("early stop"), std::string::npos);
}

// The epoch a run with `patience` must end after, from the validation scores of a run without
// it: the first one that completes `patience` epochs in a row without beating the best so far.
size_t expected_stop(const std::vector<std::vector<std::string>>& unstopped, int patience,
                     int* non_improving) {
  double best = -1;
  int without = 0;
  for (size_t e = 0; e < unstopped.size(); ++e) {
    const double score = std::stod(unstopped[e][4]);
    without = score > best ? 0 : without + 1;
    if (score <= best) ++*non_improving;
    best = std::max(best, score);
    if (without >= patience) return e + 1;
  }
  return unstopped.size();
}

// On a network that learns, checked against the scores of the same run without patience. At
// lr 0.1 the scores dip for two epochs (a stop after epoch 4); at lr 0.02 they dip for one
// epoch twice, so a count that is not reset by an improvement would stop too early.
TEST_F(RunExtrasTest, EarlyStoppingFollowsTheValidationScoresOfAnUnstoppedRun) {
  const fs::path tiny = write("tiny.toml", kTinyGraph);
  constexpr int kPatience = 2;
  for (const auto& [lr, epochs, stops] :
       {std::tuple{"0.1", 6, true}, std::tuple{"0.02", 8, false}}) {
    SCOPED_TRACE(std::string("lr ") + lr);
    const std::vector<std::string> base =
        with(kSmallData, {std::string("train.lr=") + lr, "train.epochs=" + std::to_string(epochs)});
    const fs::path full_dir = dir_ / (std::string("full") + lr);
    emt::run_pipeline(emt::parse_graph_file(tiny, base), {.out_dir = full_dir});
    const auto full = history_rows(full_dir);
    ASSERT_EQ(full.size(), static_cast<size_t>(epochs));
    int non_improving = 0;
    const size_t expected_epochs = expected_stop(full, kPatience, &non_improving);
    // Guards against settings that no longer exercise what the comment above says.
    ASSERT_EQ(expected_epochs < full.size(), stops) << read_text(full_dir / emt::kHistoryFile);
    ASSERT_GE(non_improving, 2) << read_text(full_dir / emt::kHistoryFile);

    const fs::path patient_dir = dir_ / (std::string("patient") + lr);
    const emt::RunSummary summary = emt::run_pipeline(
        emt::parse_graph_file(tiny, with(base, {"train.patience=" + std::to_string(kPatience)})),
        {.out_dir = patient_dir});
    const auto patient = history_rows(patient_dir);
    ASSERT_EQ(patient.size(), expected_epochs) << read_text(full_dir / emt::kHistoryFile);
    EXPECT_EQ(summary.stopped_early, stops);
    for (size_t e = 0; e < patient.size(); ++e) {
      EXPECT_EQ(patient[e][1], full[e][1]) << "epoch " << e + 1 << " trained differently";
      EXPECT_EQ(patient[e][4], full[e][4]) << "epoch " << e + 1 << " trained differently";
    }
  }
}

TEST_F(RunExtrasTest, NegativePatienceOrPrefetchIsRefusedNamingTheSetting) {
  const fs::path tiny = write("tiny.toml", kTinyGraph);
  for (const std::string setting : {"train.patience", "train.prefetch_batches"}) {
    const emt::GraphFile file = emt::parse_graph_file(tiny, with(kSmallData, {setting + "=-1"}));
    try {
      emt::run_pipeline(file, {.out_dir = dir_ / "bad"});
      ADD_FAILURE() << setting << " = -1 was accepted";
    } catch (const emt::GraphError& e) {
      EXPECT_NE(std::string(e.what()).find(setting), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(dir_ / "bad")) << "a refused setting left a run directory";
  }
}

TEST_F(RunExtrasTest, CheckpointKeepsTheEarlyStoppingCountAndTheLastEpochsTimings) {
  const emt::GraphFile file = emt::parse_graph_file(write("tiny.toml", kTinyGraph));
  emt::Model model(file, 1);
  auto adam = emt::Optimizer::make({.kind = "adam"});
  emt::TrainingState state;
  state.epochs_done = 7;
  state.best_score = 2.5;
  state.best_epoch = 2;
  state.images_per_s = 10.25;
  state.compute_images_per_s = 11.5;
  state.data_wait_fraction = 0.0625;
  state.epochs_without_improvement = 3;  // not 7 - 1 - 2: the stored count wins over the guess
  const fs::path path = dir_ / "checkpoint.safetensors";
  const emt::CheckpointOwner owner{file.graph.name, "adam"};
  emt::save_checkpoint(path, owner, model.params(), *adam, state);
  const emt::TrainingState loaded = emt::load_checkpoint(path, owner, model.params(), *adam);
  EXPECT_EQ(loaded.epochs_without_improvement, 3);
  EXPECT_EQ(loaded.compute_images_per_s, 11.5);
  EXPECT_EQ(loaded.data_wait_fraction, 0.0625);
}

// ---------------------------------------------------------------------------------------------
// Data wait, throughput and intervals in the run directory

TEST_F(RunExtrasTest, RunReportsDataWaitThroughputAndTestIntervals) {
  const fs::path tiny = write("tiny.toml", kTinyGraph);
  const emt::GraphFile file = emt::parse_graph_file(tiny, kSmallData);
  const fs::path out = dir_ / "run";
  const emt::RunSummary summary = emt::run_pipeline(file, {.out_dir = out});

  const std::vector<std::string> lines = split(read_text(out / emt::kHistoryFile), '\n');
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "epoch,train_loss,images_per_s,val_loss,val_score,data_wait");
  for (const auto& row : history_rows(out)) {
    ASSERT_EQ(row.size(), 6u);
    const double wait = std::stod(row[5]);
    EXPECT_GE(wait, 0.0);
    EXPECT_LT(wait, 1.0);
  }
  const std::string log = read_text(out / emt::kLogFile);
  EXPECT_EQ(count_of(log, "; data wait "), 2u) << log;
  EXPECT_EQ(count_of(log, "throughput "), 1u) << log;
  EXPECT_NE(log.find("img/s compute-only"), std::string::npos) << log;

  const nlohmann::json metrics = read_json(out / emt::kMetricsFile);
  ASSERT_TRUE(metrics["data_wait_fraction"].is_number()) << metrics.dump();
  EXPECT_EQ(metrics["data_wait_fraction"].get<double>(), summary.data_wait_fraction);
  EXPECT_NEAR(metrics["data_wait_fraction"].get<double>(), std::stod(history_rows(out)[1][5]),
              1e-6);  // history.csv rounds to 6 decimals
  EXPECT_GT(metrics["compute_images_per_s"].get<double>(), 0.0);

  // Every metric's interval holds its point estimate.
  ASSERT_TRUE(metrics.contains("ci95")) << metrics.dump();
  for (const char* key : {"acc", "sen", "spe", "auc", "dsc", "iou"}) {
    ASSERT_TRUE(metrics["ci95"].contains(key)) << key << ": " << metrics.dump();
    const nlohmann::json& ci = metrics["ci95"][key];
    if (ci[0].is_null()) {  // no resample defines it (e.g. one class only)
      EXPECT_GT(metrics["bootstrap"]["undefined_resamples"][key].get<int>(), 0) << key;
      continue;
    }
    const double value = metrics[key].get<double>();
    EXPECT_LE(ci[0].get<double>(), value) << key;
    EXPECT_GE(ci[1].get<double>(), value) << key;
  }
  EXPECT_EQ(metrics["bootstrap"]["resamples"], 2000);
  EXPECT_EQ(metrics["bootstrap"]["seed"], 42);
  EXPECT_NE(log.find("95% bootstrap CI): loss "), std::string::npos) << log;
  EXPECT_NE(log.find(" acc "), std::string::npos) << log;

  // `engine eval` of the run's best weights on the test split reports the same intervals.
  emt::EvalCommandOptions options;
  options.weights = out / emt::kWeightsFile;
  options.out_dir = dir_ / "eval";
  options.split = "test";
  options.overlays = 0;
  const emt::EvalCommandResult eval = emt::run_eval(file, options);
  EXPECT_EQ(eval.metrics["ci95"], metrics["ci95"]);
  EXPECT_EQ(eval.metrics["bootstrap"], metrics["bootstrap"]);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Initial weights

// A run from initial weights matches the imported batch norms to its data before the first
// step (train.bn_calibration_images) and says so; 0 keeps the file's values; a negative count
// is refused at the setting.
TEST_F(RunExtrasTest, InitialWeightsCalibrateTheirBatchNormsFromTheData) {
  const fs::path graph = write("tiny.toml", kTinyGraph);
  const fs::path weights = dir_ / "init.safetensors";
  {
    const emt::GraphFile file = emt::parse_graph_file(graph, kSmallData);
    emt::Model source(file, 9);
    emt::SafetensorsFile init;
    init.tensors = source.params().to_tensors();
    emt::write_safetensors(weights, init);
  }
  const std::vector<std::string> base =
      with(kSmallData, {"train.epochs=1", "train.init_weights=" + weights.string()});
  const fs::path out = dir_ / "run";
  emt::run_pipeline(emt::parse_graph_file(graph, with(base, {"train.bn_calibration_images=8"})),
                    {.out_dir = out});
  const std::string log = read_text(out / emt::kLogFile);
  EXPECT_NE(log.find("calibrated 5 imported batch norms over 8 images"), std::string::npos) << log;

  const fs::path kept = dir_ / "kept";
  emt::run_pipeline(emt::parse_graph_file(graph, with(base, {"train.bn_calibration_images=0"})),
                    {.out_dir = kept});
  EXPECT_EQ(read_text(kept / emt::kLogFile).find("calibrated"), std::string::npos);

  EXPECT_THROW(emt::run_pipeline(
                   emt::parse_graph_file(graph, with(base, {"train.bn_calibration_images=-1"})),
                   {.out_dir = dir_ / "refused"}),
               emt::GraphError);
  EXPECT_FALSE(fs::exists(dir_ / "refused"));
}
