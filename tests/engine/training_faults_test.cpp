// A training step that goes non-finite stops the run naming the op where it first went wrong
// (node, op, graph file:line), not only the total loss.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/data/dataset.h"
#include "engine/dsl/parser.h"
#include "engine/runtime/batch.h"
#include "engine/runtime/executor.h"
#include "engine/runtime/model.h"
#include "engine/runtime/threading.h"
#include "engine/train/trainer.h"
#include "tests/engine/temp_dir_test.h"
#include "tests/engine/tiny_graph.h"

namespace {

class TrainingFaults : public emt::test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    emt::init_threading(2);
    std::vector<std::string> settings = emt::test::kSmallData;
    settings.push_back("train.epochs=1");
    file_ = emt::parse_graph_file(write("tiny.toml", emt::test::kTinyGraph), settings);
    data_ = emt::load_dataset(file_.config, 1);
  }

  // Trains one epoch with `value` written into the parameter; returns the error it stops with.
  std::string train_with(const std::string& param, float value) {
    emt::Model model(file_, 1);
    emt::Trainer trainer(model, file_.config, data_);
    model.params().at(param).value[0] = value;
    try {
      trainer.run_epoch();
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "";
  }

  emt::GraphFile file_;
  emt::Dataset data_;
};

void expect_holds(const std::string& message, const std::vector<std::string>& fragments) {
  for (const std::string& fragment : fragments)
    EXPECT_NE(message.find(fragment), std::string::npos)
        << "'" << fragment << "' not in: " << message;
}

// tiny.toml: c3 is on line 13 and cls_logit on line 29 (tests/engine/tiny_graph.h).
TEST_F(TrainingFaults, NanWeightStopsTheFirstStepNamingItsNode) {
  const std::string message = train_with("c3.weight", std::numeric_limits<float>::quiet_NaN());
  expect_holds(message, {"training diverged at epoch 1 step 1", "node 'c3' (op conv2d, ",
                         "tiny.toml:13", "parameter 'c3.weight'", "last checkpoint is kept"});
}

TEST_F(TrainingFaults, InfiniteBiasIsNamedAtItsOwnNode) {
  const std::string message = train_with("cls_logit.bias", std::numeric_limits<float>::infinity());
  expect_holds(message, {"step 1", "node 'cls_logit' (op dense, ", "tiny.toml:29",
                         "parameter 'cls_logit.bias'"});
}

TEST_F(TrainingFaults, FiniteTrainingRaisesNothing) {
  emt::Model model(file_, 1);
  emt::Trainer trainer(model, file_.config, data_);
  EXPECT_NO_THROW(trainer.run_epoch());
}

// Finite weights so large that c2's sums of positive terms overflow: its output is the first
// non-finite value, and nothing before it is.
TEST_F(TrainingFaults, OverflowingOutputIsFoundAtTheOpThatOverflowed) {
  emt::Model model(file_, 1);
  std::vector<float>& weight = model.params().at("c2.weight").value;
  std::fill(weight.begin(), weight.end(), 3e38f);
  emt::Executor& exec = model.executor(4, emt::Mode::kTrain);
  std::vector<const emt::Sample*> batch;
  for (int i = 0; i < 4; ++i) batch.push_back(&data_.samples[static_cast<size_t>(i)]);
  emt::load_batch(exec, batch);
  exec.forward();
  const auto found = exec.first_non_finite();
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->step->node->name, "c2");
  EXPECT_EQ(found->what, "its output");
}

}  // namespace
