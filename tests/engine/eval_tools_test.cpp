// Evaluation tools: bootstrap confidence intervals, the operating point chosen on val and
// applied to test, the ROC and overlay figures, and `engine eval` end to end on phantoms.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "engine/data/preprocess.h"
#include "engine/dsl/parser.h"
#include "engine/eval/bootstrap.h"
#include "engine/eval/eval_command.h"
#include "engine/eval/metrics.h"
#include "engine/eval/operating_point.h"
#include "engine/eval/plots.h"
#include "engine/io/atomic_file.h"
#include "engine/io/safetensors.h"
#include "engine/runtime/model.h"
#include "engine/runtime/threading.h"
#include "engine/train/run.h"
#include "tests/engine/temp_dir_test.h"
#include "tests/engine/text_files.h"
#include "tests/engine/tiny_graph.h"

namespace {

using emt::test::kSmallData;
using emt::test::kTinyGraph;

namespace fs = std::filesystem;
using emt::BootstrapOptions;
using emt::BootstrapResult;
using emt::ImageResult;
using emt::MetricInterval;
using emt::test::read_text;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Scored images with an informative classifier (malignant scores lean higher) and Dice scores
// spread over [0.3, 1].
std::vector<ImageResult> random_images(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<ImageResult> images(n);
  for (size_t i = 0; i < n; ++i) {
    ImageResult& r = images[i];
    r.id = "img" + std::to_string(i);
    r.label = u(rng) < 0.4 ? 1 : 0;
    r.prob = static_cast<float>(std::clamp(0.3 * r.label + 0.7 * u(rng), 0.0, 1.0));
    const double dice = 0.3 + 0.7 * u(rng);
    r.mask = {dice, dice / (2.0 - dice)};
  }
  return images;
}

std::vector<const MetricInterval*> intervals(const BootstrapResult& r) {
  return {&r.acc, &r.sen, &r.spe, &r.auc, &r.dsc, &r.iou};
}

// ---------------------------------------------------------------------------------------------
// Bootstrap

TEST(EvalToolsBootstrap, IntervalsContainThePointEstimateAndShrinkWithMoreData) {
  emt::init_threading(2);
  BootstrapOptions opts;
  opts.resamples = 1000;
  const BootstrapResult small = emt::bootstrap_metrics(random_images(60, 1), opts);
  const BootstrapResult large = emt::bootstrap_metrics(random_images(1500, 1), opts);
  const char* names[] = {"acc", "sen", "spe", "auc", "dsc", "iou"};
  for (size_t m = 0; m < 6; ++m) {
    for (const BootstrapResult* r : {&small, &large}) {
      const MetricInterval& ci = *intervals(*r)[m];
      EXPECT_LE(ci.lo, ci.value) << names[m];
      EXPECT_GE(ci.hi, ci.value) << names[m];
      EXPECT_LT(ci.lo, ci.hi) << names[m];
      EXPECT_EQ(ci.defined + ci.undefined, 1000) << names[m];
    }
    const double small_width = intervals(small)[m]->hi - intervals(small)[m]->lo;
    const double large_width = intervals(large)[m]->hi - intervals(large)[m]->lo;
    // 25x the images: the width shrinks about 5x; demand at least 2.5x.
    EXPECT_LT(large_width * 2.5, small_width) << names[m];
  }
  // The point estimates are the plain metrics of all images.
  const std::vector<ImageResult> images = random_images(60, 1);
  const emt::ScoredLabels s = emt::scored_labels(images);
  const emt::ClassificationMetrics m = emt::classification_metrics(s.probs, s.labels, 0.5);
  EXPECT_DOUBLE_EQ(small.acc.value, m.acc);
  EXPECT_DOUBLE_EQ(small.auc.value, m.auc);
}

TEST(EvalToolsBootstrap, DeterministicForASeedAndDependsOnIt) {
  const std::vector<ImageResult> images = random_images(80, 2);
  BootstrapOptions opts;
  opts.resamples = 300;
  opts.seed = 7;
  emt::init_threading(1);
  const BootstrapResult a = emt::bootstrap_metrics(images, opts);
  emt::init_threading(2);  // another thread count must not change the draws
  const BootstrapResult b = emt::bootstrap_metrics(images, opts);
  opts.seed = 8;
  const BootstrapResult c = emt::bootstrap_metrics(images, opts);
  bool any_differs = false;
  for (size_t m = 0; m < 6; ++m) {
    EXPECT_EQ(intervals(a)[m]->lo, intervals(b)[m]->lo);
    EXPECT_EQ(intervals(a)[m]->hi, intervals(b)[m]->hi);
    EXPECT_EQ(intervals(a)[m]->undefined, intervals(b)[m]->undefined);
    any_differs = any_differs || intervals(a)[m]->lo != intervals(c)[m]->lo ||
                  intervals(a)[m]->hi != intervals(c)[m]->hi;
  }
  EXPECT_TRUE(any_differs);
}

TEST(EvalToolsBootstrap, PerfectClassifierGivesAPointInterval) {
  std::vector<ImageResult> images;
  for (int i = 0; i < 20; ++i)
    images.push_back({"x", i % 2, i % 2 ? 0.9f : 0.1f, {0.5, 1.0 / 3.0}});
  const BootstrapResult r = emt::bootstrap_metrics(images, {.resamples = 500});
  for (const MetricInterval* ci : {&r.acc, &r.auc}) {
    EXPECT_EQ(ci->value, 1.0);
    EXPECT_EQ(ci->lo, 1.0);
    EXPECT_EQ(ci->hi, 1.0);
  }
  EXPECT_EQ(r.dsc.lo, 0.5);
  EXPECT_EQ(r.dsc.hi, 0.5);
  EXPECT_DOUBLE_EQ(r.iou.hi, 1.0 / 3.0);
}

// One malignant case in ten: a resample misses it with probability 0.9^10 = 0.349, and then has
// no sensitivity and no AUC; those resamples are counted, not scored.
TEST(EvalToolsBootstrap, ResamplesWithoutPositivesAreSkippedAndCounted) {
  std::vector<ImageResult> images;
  for (int i = 0; i < 10; ++i)
    images.push_back({"x", i == 0 ? 1 : 0, i == 0 ? 0.8f : 0.1f * static_cast<float>(i % 5), {}});
  const BootstrapResult r = emt::bootstrap_metrics(images, {.resamples = 4000});
  EXPECT_EQ(r.sen.value, 1.0);
  EXPECT_NEAR(r.sen.undefined / 4000.0, 0.349, 0.03);
  EXPECT_EQ(r.sen.defined + r.sen.undefined, 4000);
  EXPECT_EQ(r.auc.undefined, r.sen.undefined);
  EXPECT_EQ(r.sen.lo, 1.0);  // whenever the one positive is drawn, it is found
  EXPECT_EQ(r.spe.undefined, 0);
  EXPECT_EQ(r.acc.undefined, 0);

  // No positive at all: SEN and AUC are undefined everywhere, with NaN bounds.
  for (ImageResult& x : images) x.label = 0;
  const BootstrapResult none = emt::bootstrap_metrics(images, {.resamples = 100});
  EXPECT_TRUE(std::isnan(none.sen.value));
  EXPECT_TRUE(std::isnan(none.sen.lo));
  EXPECT_TRUE(std::isnan(none.auc.hi));
  EXPECT_EQ(none.sen.defined, 0);
  EXPECT_EQ(none.sen.undefined, 100);
  EXPECT_EQ(none.spe.undefined, 0);
  EXPECT_EQ(none.spe.value, none.acc.value);  // all benign: every correct call is a true negative
  EXPECT_DOUBLE_EQ(none.spe.value, 0.9);      // the 0.8 score is the one false positive
}

TEST(EvalToolsBootstrap, MissingHeadsAndBadInput) {
  std::vector<ImageResult> images = random_images(10, 3);
  for (ImageResult& r : images) r.mask = {kNaN, kNaN};
  const BootstrapResult r = emt::bootstrap_metrics(images, {.resamples = 50});
  EXPECT_TRUE(std::isnan(r.dsc.value));
  EXPECT_TRUE(std::isnan(r.dsc.lo));
  EXPECT_EQ(r.dsc.defined + r.dsc.undefined, 0);
  EXPECT_EQ(r.acc.defined, 50);

  images[3].mask = {0.5, 0.3};  // a mask score for one image only
  EXPECT_THROW(emt::bootstrap_metrics(images), std::invalid_argument);
  EXPECT_THROW(emt::bootstrap_metrics({}), std::invalid_argument);
  EXPECT_THROW(emt::bootstrap_metrics(random_images(5, 1), {.resamples = 0}),
               std::invalid_argument);
  EXPECT_THROW(emt::bootstrap_metrics(random_images(5, 1), {.confidence = 1.0}),
               std::invalid_argument);
}

TEST(EvalToolsBootstrap, PercentileInterpolatesBetweenOrderStatistics) {
  const std::vector<double> v = {1, 2, 3, 4};
  EXPECT_EQ(emt::percentile(v, 0.0), 1.0);
  EXPECT_EQ(emt::percentile(v, 1.0), 4.0);
  EXPECT_EQ(emt::percentile(v, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(emt::percentile(v, 0.025), 1.075);
  EXPECT_TRUE(std::isnan(emt::percentile({}, 0.5)));
}

// ---------------------------------------------------------------------------------------------
// Operating point and ROC points

TEST(EvalToolsOperatingPoint, ReachesTheTargetSensitivityOnValAndAppliesItToTest) {
  const std::vector<ImageResult> val = random_images(200, 4), test = random_images(300, 5);
  for (const double target : {0.5, 0.8, 0.9, 0.95, 1.0}) {
    const emt::OperatingPoint op = emt::choose_operating_point(val, test, target);
    EXPECT_GE(op.val.sen, target);
    EXPECT_EQ(op.val.threshold, op.threshold);
    const emt::ScoredLabels v = emt::scored_labels(val), t = emt::scored_labels(test);
    EXPECT_EQ(op.threshold, emt::threshold_for_sensitivity(v.probs, v.labels, target));
    const emt::ClassificationMetrics want =
        emt::classification_metrics(t.probs, t.labels, op.threshold);
    EXPECT_EQ(op.test.tp, want.tp);
    EXPECT_EQ(op.test.fp, want.fp);
    EXPECT_EQ(op.test.threshold, op.threshold);
  }
  // Higher targets never raise the threshold.
  EXPECT_LE(emt::choose_operating_point(val, test, 0.95).threshold,
            emt::choose_operating_point(val, test, 0.8).threshold);

  std::vector<ImageResult> benign_only = val;
  for (ImageResult& r : benign_only) r.label = 0;
  EXPECT_THROW(emt::choose_operating_point(benign_only, test, 0.9), std::runtime_error);
  EXPECT_THROW(emt::choose_operating_point(val, test, 0.0), std::invalid_argument);
  EXPECT_THROW(emt::choose_operating_point(val, {}, 0.9), std::runtime_error);
}

TEST(EvalToolsOperatingPoint, RocPointsCarryTheThresholdThatProducesThem) {
  const std::vector<float> probs = {0.9f, 0.8f, 0.8f, 0.6f, 0.3f, 0.1f};
  const std::vector<int> labels = {1, 1, 0, 1, 0, 0};
  const std::vector<emt::RocPoint> points = emt::roc_points(probs, labels);
  ASSERT_EQ(points.size(), 6u);  // (0, 0) plus 5 distinct scores
  EXPECT_TRUE(std::isinf(points[0].threshold));
  EXPECT_EQ(points[0].fpr, 0.0);
  EXPECT_EQ(points[0].tpr, 0.0);
  EXPECT_EQ(points.back().fpr, 1.0);
  EXPECT_EQ(points.back().tpr, 1.0);
  for (size_t i = 1; i < points.size(); ++i) {
    EXPECT_LT(points[i].threshold, points[i - 1].threshold);
    const emt::ClassificationMetrics m =
        emt::classification_metrics(probs, labels, points[i].threshold);
    EXPECT_DOUBLE_EQ(points[i].tpr, m.sen) << i;
    EXPECT_DOUBLE_EQ(points[i].fpr, 1.0 - m.spe) << i;
  }
  EXPECT_THROW(emt::scored_labels(std::vector<ImageResult>{{"a", 0, kNaN, {}}}),
               std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------
// Figures

using EvalToolsPlots = emt::test::TempDirTest;

TEST_F(EvalToolsPlots, RocPlotIsWrittenAsADecodablePng) {
  const std::vector<ImageResult> images = random_images(100, 6);
  const emt::ScoredLabels s = emt::scored_labels(images);
  const cv::Mat plot =
      emt::plot_roc(emt::roc_curve(s.probs, s.labels), emt::roc_auc(s.probs, s.labels),
                    emt::PlotMarker{0.2, 0.9, "t=0.40"}, 400);
  ASSERT_EQ(plot.size(), cv::Size(400, 400));
  const fs::path path = dir_ / "roc.png";
  emt::write_png(path, plot);
  ASSERT_GT(fs::file_size(path), 1000u);
  const cv::Mat back = cv::imread(path.string(), cv::IMREAD_UNCHANGED);
  ASSERT_FALSE(back.empty());
  EXPECT_EQ(back.size(), cv::Size(400, 400));
  EXPECT_EQ(back.channels(), 3);
  EXPECT_EQ(cv::norm(back, plot, cv::NORM_INF), 0.0);  // PNG is lossless
  // Not a blank canvas: the curve and axes put dark and coloured pixels on the white paper.
  cv::Mat grey;
  cv::cvtColor(back, grey, cv::COLOR_BGR2GRAY);
  EXPECT_GT(cv::countNonZero(grey < 128), 500);
  EXPECT_THROW(emt::plot_roc({}, 0.5, std::nullopt, 100), std::invalid_argument);
}

// One full bin at the top right ([0.9, 1], all malignant): its bar is the only light-blue area,
// right of the middle and reaching the upper half; empty bins draw nothing.
TEST_F(EvalToolsPlots, ReliabilityBarsStandWhereTheirBinsAre) {
  std::vector<emt::ReliabilityBin> bins(10);
  for (int k = 0; k < 10; ++k) bins[k] = {k / 10.0, (k + 1) / 10.0, 0, NAN, NAN};
  bins[9] = {0.9, 1.0, 5, 0.95, 1.0};
  const cv::Mat plot = emt::plot_reliability(bins, 0.05, 400);
  ASSERT_EQ(plot.size(), cv::Size(400, 400));
  cv::Mat bar;
  cv::inRange(plot, cv::Scalar(235, 200, 160), cv::Scalar(235, 200, 160), bar);
  ASSERT_GT(cv::countNonZero(bar), 200);
  const cv::Rect box = cv::boundingRect(bar);
  EXPECT_GT(box.x, 300);
  EXPECT_LT(box.y, 100);
  EXPECT_THROW(emt::plot_reliability(bins, 0.05, 100), std::invalid_argument);
}

TEST_F(EvalToolsPlots, OverlayShowsImageTruthAndPredictionSideBySide) {
  const int side = 32;
  emt::Sample sample;
  sample.id = "benign (7)";
  sample.image.assign(side * side, 0.0f);  // normalised 0 = mean grey
  sample.mask.assign(side * side, 0.0f);
  std::vector<float> predicted(side * side, 0.0f);
  for (int y = 8; y < 24; ++y)
    for (int x = 8; x < 24; ++x) sample.mask[static_cast<size_t>(y * side + x)] = 1.0f;
  for (int y = 12; y < 28; ++y)
    for (int x = 12; x < 28; ++x) predicted[static_cast<size_t>(y * side + x)] = 0.9f;
  const emt::OverlayImage o =
      emt::overlay_image(sample, predicted, {}, "benign (7)  label 0  Dice 0.56");
  EXPECT_EQ(o.image.at<uchar>(0, 0), 128);  // (0 * 0.25 + 0.5) * 255, rounded
  EXPECT_EQ(cv::countNonZero(o.truth), 16 * 16);
  EXPECT_EQ(cv::countNonZero(o.predicted), 16 * 16);

  const cv::Mat panels = emt::overlay_panels(o);
  const cv::Size want = emt::overlay_size(side);
  const int scale = emt::overlay_scale(side);
  EXPECT_EQ(scale, 5);
  EXPECT_EQ(want.width, 3 * side * scale + 8);
  EXPECT_EQ(panels.size(), want);
  const fs::path path = dir_ / "overlays" / "best_1.png";
  fs::create_directories(path.parent_path());
  emt::write_png(path, panels);
  const cv::Mat back = cv::imread(path.string(), cv::IMREAD_COLOR);
  ASSERT_FALSE(back.empty());
  EXPECT_EQ(back.size(), want);
  // Inside the truth, in the middle panel: green dominates; inside the prediction only, in the
  // right panel: red dominates (BGR).
  const int panel = side * scale, top = want.height - panel;
  const cv::Vec3b truth_px = back.at<cv::Vec3b>(top + 10 * scale, panel + 4 + 10 * scale);
  EXPECT_GT(truth_px[1], truth_px[2] + 40);
  const cv::Vec3b pred_px = back.at<cv::Vec3b>(top + 26 * scale, 2 * (panel + 4) + 26 * scale);
  EXPECT_GT(pred_px[2], pred_px[1] + 40);
  // The left panel is the plain grey image.
  const cv::Vec3b grey_px = back.at<cv::Vec3b>(top + 10 * scale, 10 * scale);
  EXPECT_EQ(grey_px[0], grey_px[2]);

  EXPECT_THROW(emt::overlay_image(sample, std::vector<float>(10), {}, ""), std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------
// `engine eval` end to end

class EvalToolsCommand : public emt::test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    emt::init_threading(2);
    file_ = emt::parse_graph_file(write("tiny.toml", kTinyGraph), kSmallData);
    emt::Model model(file_, 11);
    emt::SafetensorsFile weights;
    weights.tensors = model.params().to_tensors();
    weights.metadata = {{"graph", "tiny"},
                        {"input_size", "32"},
                        {"norm_mean", "0.5"},
                        {"norm_std", "0.25"},
                        {"threshold", "0.375"}};
    weights_ = dir_ / "weights.safetensors";
    emt::write_safetensors(weights_, weights);
  }

  emt::EvalCommandOptions options(const std::string& out) const {
    emt::EvalCommandOptions o;
    o.weights = weights_;
    o.out_dir = dir_ / out;
    o.bootstrap_resamples = 200;
    return o;
  }

  emt::GraphFile file_;
  fs::path weights_;
};

TEST_F(EvalToolsCommand, WritesEveryFileAndMetricsAgreeWithPerImageRows) {
  const emt::EvalCommandResult result = emt::run_eval(file_, options("eval"));
  const fs::path out = dir_ / "eval";
  for (const char* name :
       {emt::kMetricsFile, emt::kPerImageFile, emt::kRocPlotFile, emt::kReliabilityPlotFile})
    ASSERT_TRUE(fs::is_regular_file(out / name)) << name;

  const nlohmann::json metrics = nlohmann::json::parse(read_text(out / emt::kMetricsFile));
  EXPECT_EQ(metrics["n"], 40);
  EXPECT_EQ(metrics["split"], "all");
  EXPECT_EQ(metrics["threshold"], 0.375);
  EXPECT_EQ(metrics["threshold_source"], "weights metadata");
  for (const char* key : {"acc", "sen", "spe", "auc", "dsc", "iou"}) {
    ASSERT_TRUE(metrics.contains(key)) << key;
    ASSERT_TRUE(metrics["ci95"].contains(key)) << key;
    const nlohmann::json& ci = metrics["ci95"][key];
    ASSERT_EQ(ci.size(), 2u) << key;
    if (metrics[key].is_null()) continue;
    EXPECT_LE(ci[0].get<double>(), metrics[key].get<double>()) << key;
    EXPECT_GE(ci[1].get<double>(), metrics[key].get<double>()) << key;
  }

  // ACC recomputed from per_image.csv's label and predicted columns.
  std::istringstream csv(read_text(out / emt::kPerImageFile));
  std::string line;
  std::getline(csv, line);
  EXPECT_EQ(line, "id,label,prob,predicted,dice,iou,split");
  int rows = 0, correct = 0;
  while (std::getline(csv, line)) {
    std::vector<std::string> cells;
    std::stringstream fields(line);
    for (std::string cell; std::getline(fields, cell, ',');) cells.push_back(cell);
    ASSERT_EQ(cells.size(), 7u) << line;
    ++rows;
    correct += cells[1] == cells[3];
    EXPECT_TRUE(cells[6] == "train" || cells[6] == "val" || cells[6] == "test") << line;
  }
  EXPECT_EQ(rows, 40);
  EXPECT_DOUBLE_EQ(metrics["acc"].get<double>(), correct / 40.0);
  EXPECT_DOUBLE_EQ(result.report.cls.acc, correct / 40.0);

  const cv::Mat roc = cv::imread((out / emt::kRocPlotFile).string());
  ASSERT_FALSE(roc.empty());
  EXPECT_EQ(roc.size(), cv::Size(480, 480));

  // Best and worst 4 by Dice, one PNG each, all at the overlay size of 32x32 inputs.
  int best = 0, worst = 0;
  for (const fs::directory_entry& e : fs::directory_iterator(out / emt::kOverlayDir)) {
    const std::string name = e.path().filename().string();
    best += name.rfind("best_", 0) == 0;
    worst += name.rfind("worst_", 0) == 0;
    ASSERT_GT(fs::file_size(e.path()), 0u);
    const cv::Mat img = cv::imread(e.path().string());
    ASSERT_FALSE(img.empty()) << name;
    EXPECT_EQ(img.size(), emt::overlay_size(32)) << name;
  }
  EXPECT_EQ(best, 4);
  EXPECT_EQ(worst, 4);
  EXPECT_EQ(metrics["overlays"].size(), 8u);
  // No temp file is left behind.
  for (const fs::directory_entry& e : fs::recursive_directory_iterator(out))
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
}

TEST_F(EvalToolsCommand, TargetSensitivityChoosesOnValAndReportsTest) {
  emt::EvalCommandOptions o = options("op");
  o.target_sensitivity = 0.9;
  o.threshold = 0.5;
  const emt::EvalCommandResult result = emt::run_eval(file_, o);
  ASSERT_TRUE(result.operating_point.has_value());
  const nlohmann::json metrics = nlohmann::json::parse(read_text(dir_ / "op" / emt::kMetricsFile));
  EXPECT_EQ(metrics["split"], "test");
  const nlohmann::json& op = metrics["operating_point"];
  EXPECT_EQ(op["target_sensitivity"], 0.9);
  EXPECT_GE(op["val"]["sen"].get<double>(), 0.9);
  EXPECT_EQ(op["default_threshold"], 0.5);
  EXPECT_EQ(op["threshold"].get<double>(), metrics["threshold"].get<double>());
  EXPECT_EQ(op["test"]["acc"], metrics["acc"]);
  EXPECT_EQ(op["test_at_default_threshold"]["threshold"], 0.5);
  EXPECT_EQ(metrics["n"].get<int>(), op["test"]["n"].get<int>());
  EXPECT_LT(metrics["n"].get<int>(), 40);

  o.split = "val";
  EXPECT_THROW(emt::run_eval(file_, o), std::invalid_argument);
}

TEST_F(EvalToolsCommand, SplitOptionScoresOnlyThatSplit) {
  emt::EvalCommandOptions o = options("val");
  o.split = "val";
  o.threshold = 0.5;
  const emt::EvalCommandResult result = emt::run_eval(file_, o);
  EXPECT_EQ(result.report.images.size(), 6u);  // 15% of 40
  EXPECT_EQ(result.threshold, 0.5);
  const std::string csv = read_text(dir_ / "val" / emt::kPerImageFile);
  EXPECT_EQ(csv.find(",test\n"), std::string::npos);
  EXPECT_EQ(csv.find(",train\n"), std::string::npos);
}

TEST_F(EvalToolsCommand, InputSizeOfTheWeightsMustMatchAndIsOfferedAsSettings) {
  EXPECT_EQ(
      emt::weights_settings(weights_),
      (std::vector<std::string>{"data.input_size=32", "data.norm_mean=0.5", "data.norm_std=0.25"}));
  std::vector<std::string> sets = kSmallData;
  sets.push_back("data.input_size=16");
  const emt::GraphFile other = emt::parse_graph_file(dir_ / "tiny.toml", sets);
  try {
    emt::run_eval(other, options("bad"));
    FAIL() << "expected an input-size mismatch";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("--set data.input_size=32"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(dir_ / "bad"));
}

}  // namespace
