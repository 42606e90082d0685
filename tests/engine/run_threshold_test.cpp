// eval.target_sensitivity: `engine run` chooses the threshold on validation, stores it with the
// weights and scores test at it; 0 keeps eval.threshold.
#include "engine/train/run_threshold.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "engine/data/dataset.h"
#include "engine/eval/trained_weights.h"
#include "engine/io/atomic_file.h"
#include "engine/io/safetensors.h"
#include "engine/runtime/model.h"
#include "engine/runtime/threading.h"
#include "engine/train/run.h"
#include "tests/engine/run_tables.h"
#include "tests/engine/temp_dir_test.h"
#include "tests/engine/tiny_graph.h"

namespace {

namespace fs = std::filesystem;

class RunThresholdTest : public emt::test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    emt::init_threading(2);
  }
  emt::GraphFile graph(const std::string& target) {
    std::vector<std::string> settings = emt::test::kSmallData;
    settings.push_back("data.count=64");
    settings.push_back("train.epochs=1");
    settings.push_back("eval.target_sensitivity=" + target);
    return emt::parse_graph_file(write("tiny.toml", emt::test::kTinyGraph), settings);
  }
};

TEST_F(RunThresholdTest, TheThresholdIsChosenOnValidationStoredWithTheWeightsAndScoresTest) {
  const emt::GraphFile file = graph("0.9");
  const fs::path run = dir_ / "run";
  emt::run_pipeline(file, {.out_dir = run});
  const nlohmann::json metrics = nlohmann::json::parse(emt::read_file(run / emt::kMetricsFile));
  const double threshold = metrics["threshold"].get<double>();
  EXPECT_EQ(metrics["threshold_source"], "target sensitivity 0.9 on val");
  EXPECT_EQ(metrics["operating_point"]["threshold"].get<double>(), threshold);
  EXPECT_EQ(metrics["val"]["threshold"].get<double>(), threshold);

  // Stored exactly, so that eval and predict apply it.
  emt::Config config = file.config;
  const emt::TrainedWeights trained =
      emt::load_trained_weights(run / emt::kWeightsFile, config, std::nullopt);
  EXPECT_EQ(trained.threshold, threshold);
  EXPECT_EQ(trained.threshold_source, "weights metadata");

  // The best weights on the validation images reach the target at it: counted here.
  emt::Model model(file, 0);
  model.params().load_tensors(trained.file, "weights");
  const emt::Dataset data = emt::load_dataset(file.config, 1);
  const emt::EvalReport val = emt::evaluate(model, data.samples, data.split.val, 8, threshold);
  int positives = 0, caught = 0;
  for (const emt::ImageResult& image : val.images) {
    positives += image.label;
    caught += image.label == 1 && image.prob >= threshold;
  }
  ASSERT_GT(positives, 0);
  EXPECT_GE(static_cast<double>(caught) / positives, 0.9) << caught << " of " << positives;

  // Test was scored at it: the per-image calls give the reported figures.
  const emt::test::Recomputed r = emt::test::recompute(run);
  emt::test::expect_field(metrics["acc"].get<double>(), r.acc, "acc");
  emt::test::expect_field(metrics["sen"].get<double>(), r.sen, "sen");
}

TEST_F(RunThresholdTest, ZeroKeepsEvalThreshold) {
  const fs::path run = dir_ / "run";
  emt::run_pipeline(graph("0"), {.out_dir = run});
  const nlohmann::json metrics = nlohmann::json::parse(emt::read_file(run / emt::kMetricsFile));
  EXPECT_EQ(metrics["threshold"].get<double>(), 0.5);
  EXPECT_FALSE(metrics.contains("operating_point"));
  EXPECT_FALSE(metrics.contains("threshold_source"));
  EXPECT_EQ(emt::read_safetensors(run / emt::kWeightsFile).metadata.at("threshold"), "0.5");
}

TEST_F(RunThresholdTest, ATargetOutsideTheUnitIntervalOrWithoutClassifierIsRefusedBeforeTheRun) {
  const fs::path run = dir_ / "run";
  for (const char* bad : {"1.5", "-0.1"}) {
    try {
      emt::run_pipeline(graph(bad), {.out_dir = run});
      ADD_FAILURE() << bad << " was accepted";
    } catch (const emt::GraphError& e) {
      EXPECT_NE(std::string(e.what()).find("eval.target_sensitivity"), std::string::npos)
          << e.what();
    }
  }
  std::string segmentation_only(emt::test::kTinyGraph);
  const std::string outputs = R"(outputs = { cls = "cls_prob", seg = "seg_prob" })";
  segmentation_only.replace(segmentation_only.find(outputs), outputs.size(),
                            R"(outputs = { seg = "seg_prob" })");
  const emt::GraphFile file =
      emt::parse_graph_file(write("seg.toml", segmentation_only), {"eval.target_sensitivity=0.9"});
  EXPECT_THROW(emt::check_target_sensitivity(file), emt::GraphError);
  EXPECT_FALSE(fs::exists(run));
}

}  // namespace
