// The weight average (train.ema_decay): its decay schedule and update against hand-computed
// values, the exchange with the store, and validation scoring the averaged weights.
#include "engine/train/weight_average.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "engine/data/dataset.h"
#include "engine/dsl/parser.h"
#include "engine/eval/evaluate.h"
#include "engine/runtime/model.h"
#include "engine/runtime/threading.h"
#include "engine/train/trainer.h"
#include "tests/engine/temp_dir_test.h"
#include "tests/engine/tiny_graph.h"

namespace {

class WeightAverageTest : public emt::test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    emt::init_threading(2);
  }
  emt::GraphFile tiny(std::vector<std::string> settings = emt::test::kSmallData) {
    return emt::parse_graph_file(write("tiny.toml", emt::test::kTinyGraph), settings);
  }
};

TEST(WeightAverageDecay, WarmsUpToTheConfiguredDecay) {
  const emt::WeightAverage average(0.99);
  EXPECT_DOUBLE_EQ(average.decay_at(1), 2.0 / 11.0);
  EXPECT_DOUBLE_EQ(average.decay_at(90), 91.0 / 100.0);
  EXPECT_DOUBLE_EQ(average.decay_at(5000), 0.99);
  for (const double bad : {0.0, 1.0, -0.5, 1.5})
    EXPECT_THROW(emt::WeightAverage{bad}, std::invalid_argument) << bad;
}

TEST_F(WeightAverageTest, UpdateStartsAtTheValuesThenBlendsThemIn) {
  const emt::GraphFile file = tiny();
  emt::Model model(file, 3);
  emt::ParamStore& store = model.params();
  const std::vector<float> first = store.at("c1.weight").value;
  emt::WeightAverage average(0.5);
  average.update(store, 1);
  EXPECT_EQ(average.averages().at("c1.weight"), first);
  ASSERT_EQ(average.averages().size(), store.names().size());

  std::vector<float>& value = store.at("c1.weight").value;
  for (size_t i = 0; i < value.size(); ++i) value[i] = static_cast<float>(i) * 0.25f;
  average.update(store, 100);  // decay_at(100) = 0.5
  const std::vector<float>& blended = average.averages().at("c1.weight");
  for (size_t i = 0; i < value.size(); ++i)
    EXPECT_FLOAT_EQ(blended[i], 0.5f * first[i] + 0.5f * static_cast<float>(i) * 0.25f) << i;
}

TEST_F(WeightAverageTest, SwapExchangesInPlaceAndMarksTheStoreUpdated) {
  const emt::GraphFile file = tiny();
  emt::Model model(file, 3);
  emt::ParamStore& store = model.params();
  emt::WeightAverage average(0.9);
  EXPECT_THROW(average.swap_with(store), std::logic_error) << "no average yet";
  average.update(store, 1);
  std::vector<float>& value = store.at("fc.weight").value;
  const float* buffer = value.data();
  const std::vector<float> averaged = value;
  for (float& v : value) v += 1.0f;
  const std::vector<float> live = value;
  const uint64_t version = store.version();
  {
    const emt::AveragedWeightsScope scope(&average, store);
    EXPECT_EQ(store.at("fc.weight").value, averaged);
    EXPECT_EQ(store.at("fc.weight").value.data(), buffer) << "executors point into this buffer";
    EXPECT_GT(store.version(), version);
  }
  EXPECT_EQ(store.at("fc.weight").value, live);
  EXPECT_EQ(average.averages().at("fc.weight"), averaged);
}

// With the average on, the epoch's validation report is evaluate() on the averaged weights, and
// the live weights, left in place afterwards, score differently.
TEST_F(WeightAverageTest, ValidationScoresTheAveragedWeights) {
  std::vector<std::string> settings = emt::test::kSmallData;
  settings.push_back("train.ema_decay=0.9");
  const emt::GraphFile file = tiny(settings);
  const emt::Dataset data = emt::load_dataset(file.config, 1);
  emt::Model model(file, 1);
  emt::Trainer trainer(model, file.config, data);
  ASSERT_NE(trainer.average(), nullptr);
  const emt::EpochStats stats = trainer.run_epoch();
  const auto evaluate_val = [&] {
    return emt::evaluate(model, data.samples, data.split.val, file.config.get_int("eval.batch"),
                         0.5);
  };
  const emt::EvalReport live = evaluate_val();
  emt::EvalReport averaged;
  {
    const emt::AveragedWeightsScope scope(trainer.average(), model.params());
    averaged = evaluate_val();
  }
  EXPECT_EQ(stats.val.loss, averaged.loss);
  ASSERT_EQ(stats.val.images.size(), averaged.images.size());
  for (size_t i = 0; i < averaged.images.size(); ++i)
    EXPECT_EQ(stats.val.images[i].prob, averaged.images[i].prob) << i;
  EXPECT_NE(live.loss, averaged.loss);
}

TEST_F(WeightAverageTest, DecayOutsideTheRangeIsAnErrorAtTheSetting) {
  std::vector<std::string> settings = emt::test::kSmallData;
  settings.push_back("train.ema_decay=1.5");
  const emt::GraphFile file = tiny(settings);
  const emt::Dataset data = emt::load_dataset(file.config, 1);
  emt::Model model(file, 1);
  try {
    emt::Trainer trainer(model, file.config, data);
    ADD_FAILURE() << "train.ema_decay = 1.5 must be refused";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("train.ema_decay"), std::string::npos) << e.what();
  }
}

}  // namespace
