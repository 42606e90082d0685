// eval.calibrate: the temperature is fitted on validation, folded into the classifier's logit
// layer and stored; the operating point is chosen on the calibrated probabilities.
#include "engine/train/run_calibration.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "engine/data/dataset.h"
#include "engine/eval/calibration.h"
#include "engine/eval/operating_point.h"
#include "engine/eval/trained_weights.h"
#include "engine/io/atomic_file.h"
#include "engine/runtime/batch.h"
#include "engine/runtime/executor.h"
#include "engine/runtime/model.h"
#include "engine/runtime/threading.h"
#include "engine/train/run.h"
#include "tests/engine/temp_dir_test.h"
#include "tests/engine/tiny_graph.h"

namespace {

namespace fs = std::filesystem;

class RunCalibrationTest : public emt::test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    emt::init_threading(2);
  }
  emt::GraphFile graph(std::string text = std::string(emt::test::kTinyGraph)) {
    std::vector<std::string> settings = emt::test::kSmallData;
    settings.insert(settings.end(), {"data.count=64", "train.epochs=1", "eval.calibrate=true",
                                     "eval.target_sensitivity=0.9"});
    return emt::parse_graph_file(write("tiny.toml", text), settings);
  }
};

// The logit of the first phantom through the network.
float logit_of(emt::Model& model, const emt::Sample& sample) {
  emt::Executor& exec = model.executor(1, emt::Mode::kEval);
  const emt::Sample* batch[] = {&sample};
  emt::load_batch(exec, batch);
  exec.forward();
  return exec.read("cls_logit").at(0);
}

// An over-confident validation set: probabilities sigmoid(3 z) for labels drawn at sigmoid(z).
emt::EvalReport overconfident_val() {
  emt::EvalReport val;
  std::mt19937 rng(3);
  std::normal_distribution<double> z(0, 2);
  for (int i = 0; i < 400; ++i) {
    const double zi = z(rng);
    const int label = std::uniform_real_distribution<double>(0, 1)(rng) < 1 / (1 + std::exp(-zi));
    emt::ImageResult image;
    image.id = std::to_string(i);
    image.label = label;
    image.prob = static_cast<float>(1 / (1 + std::exp(-3 * zi)));
    val.images.push_back(image);
  }
  return val;
}

TEST_F(RunCalibrationTest, TemperatureIsFoldedIntoTheLogitLayer) {
  const emt::GraphFile file = graph();
  const emt::Dataset data = emt::load_dataset(file.config, 1);
  emt::Model model(file, 1);
  const float before = logit_of(model, data.samples.at(0));
  const emt::EvalReport val = overconfident_val();
  const emt::RunCalibration calibration = emt::calibrate_classifier(model, val);
  const emt::ScoredLabels scored = emt::scored_labels(val.images);
  EXPECT_NEAR(calibration.temperature, 3, 0.4);  // the over-confidence the data was made with
  EXPECT_DOUBLE_EQ(calibration.val_ece_before,
                   emt::expected_calibration_error(scored.probs, scored.labels));
  const float after = logit_of(model, data.samples.at(0));
  EXPECT_NEAR(after, before / calibration.temperature, 1e-5 * (1 + std::abs(before)));
}

TEST_F(RunCalibrationTest, RunStoresTheTemperatureAndChoosesTheThresholdAfterIt) {
  const emt::GraphFile file = graph();
  const fs::path run = dir_ / "run";
  emt::run_pipeline(file, {.out_dir = run});
  const nlohmann::json metrics = nlohmann::json::parse(emt::read_file(run / emt::kMetricsFile));
  const double temperature = metrics["calibration"]["temperature"].get<double>();
  EXPECT_GT(temperature, 0);

  emt::Config config = file.config;
  const emt::TrainedWeights trained =
      emt::load_trained_weights(run / emt::kWeightsFile, config, std::nullopt);
  EXPECT_DOUBLE_EQ(std::stod(trained.file.metadata.at("temperature")), temperature);
  emt::Model model(file, 0);
  model.params().load_tensors(trained.file, "weights");
  const emt::Dataset data = emt::load_dataset(file.config, 1);
  const emt::EvalReport val =
      emt::evaluate(model, data.samples, data.split.val, 8, trained.threshold);
  const emt::ScoredLabels scored = emt::scored_labels(val.images);
  // Already calibrated: fitting again finds (nearly) no temperature to apply.
  EXPECT_NEAR(emt::fit_temperature(scored.probs, scored.labels), 1.0, 2e-3);
  EXPECT_NEAR(metrics["calibration"]["val_ece_after"].get<double>(),
              emt::expected_calibration_error(scored.probs, scored.labels), 1e-6);
  // The threshold reaches the target on the calibrated validation probabilities.
  int positives = 0, caught = 0;
  for (const emt::ImageResult& image : val.images) {
    positives += image.label;
    caught += image.label == 1 && image.prob >= trained.threshold;
  }
  ASSERT_GT(positives, 0);
  EXPECT_GE(static_cast<double>(caught) / positives, 0.9);
}

TEST_F(RunCalibrationTest, ALogitLayerWithoutBiasIsRefused) {
  std::string text(emt::test::kTinyGraph);
  const std::string layer = R"({ op = "dense", name = "cls_logit", out = 1 })";
  text.replace(text.find(layer), layer.size(),
               R"({ op = "dense", name = "cls_logit", out = 1, bias = false })");
  const emt::GraphFile file = graph(text);
  emt::Model model(file, 1);
  try {
    emt::calibrate_classifier(model, overconfident_val());
    ADD_FAILURE() << "calibrated a logit layer without a bias";
  } catch (const emt::GraphError& e) {
    EXPECT_NE(std::string(e.what()).find("sigmoid of a dense or conv2d layer with a bias"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
