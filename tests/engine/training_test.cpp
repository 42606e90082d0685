// Training end to end: whole-graph autodiff against finite differences, a tiny network that
// overfits a handful of phantoms, bit-exact checkpoints and resume, and `engine run`'s run
// directory.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cfloat>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "engine/compiler/program.h"
#include "engine/data/dataset.h"
#include "engine/data/phantom.h"
#include "engine/data/preprocess.h"
#include "engine/dsl/parser.h"
#include "engine/runtime/batch.h"
#include "engine/runtime/executor.h"
#include "engine/runtime/model.h"
#include "engine/runtime/params.h"
#include "engine/runtime/threading.h"
#include "engine/train/checkpoint.h"
#include "engine/train/optimizer.h"
#include "engine/train/run.h"
#include "engine/train/trainer.h"
#include "tests/engine/temp_dir_test.h"
#include "tests/engine/text_files.h"
#include "tests/engine/tiny_graph.h"

namespace {

namespace fs = std::filesystem;
using emt::Executor;
using emt::GraphFile;
using emt::Mode;
using emt::Model;
using emt::Tensor;
using emt::test::kSmallData;
using emt::test::kTinyGraph;
using emt::test::read_text;
using emt::test::split;

class TrainingTest : public emt::test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    emt::init_threading(2);  // kernels run on TBB, as in `engine run --threads 2`
  }
};

// The gradient-check graph: conv -> batch norm -> relu, whose output r1 is read by a conv
// branch AND the skip add (fan-out: its gradient must be the sum of both paths); the sum feeds
// both heads (fan-out again): stride-2 conv down, transposed conv up, a 1-channel mask logit and
// sigmoid for Dice; GAP -> dense -> relu -> dense to the class logit for the weighted BCE.
constexpr std::string_view kGradGraph = R"toml(
[graph]
name = "gradcheck"
inputs = { image = [1, 8, 8] }
targets = { label = [1], mask = [1, 8, 8] }
outputs = { cls = "cls_prob", seg = "seg_prob" }
nodes = [
  { op = "conv2d", name = "c1", in = "image", out = 4, kernel = 3, bias = false },
  { op = "batch_norm", name = "bn1" },
  { op = "relu", name = "r1" },
  { op = "conv2d", name = "c2", in = "r1", out = 4, kernel = 3 },
  { op = "add", name = "skip", in = ["c2", "r1"] },
  { op = "conv2d", name = "down", in = "skip", out = 4, kernel = 3, stride = 2 },
  { op = "conv_transpose2d", name = "up", out = 3, kernel = 3, stride = 2, pad = 1, output_pad = 1 },
  { op = "conv2d", name = "seg_logit", out = 1, kernel = 3 },
  { op = "sigmoid", name = "seg_prob" },
  { op = "global_avg_pool", name = "gap", in = "skip" },
  { op = "dense", name = "fc", out = 6 },
  { op = "relu", name = "fc_relu" },
  { op = "dense", name = "cls_logit", out = 1 },
  { op = "sigmoid", name = "cls_prob" },
]

[objective]
terms = [
  { loss = "weighted_bce", input = "cls_logit", target = "label", pos_weight = 1.5, weight = 3.0 },
  { loss = "dice", input = "seg_prob", target = "mask", weight = 1.0 },
]
)toml";

// Every parameter and running statistic, in declaration order.
std::vector<std::vector<float>> snapshot(const emt::ParamStore& store) {
  std::vector<std::vector<float>> values;
  for (const std::string& name : store.names()) values.push_back(store.at(name).value);
  return values;
}

bool bit_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Names every tensor whose bytes differ, so a failure says where.
void expect_bit_identical(const emt::ParamStore& store, const std::vector<std::vector<float>>& want,
                          const std::vector<std::vector<float>>& got) {
  ASSERT_EQ(want.size(), store.names().size());
  ASSERT_EQ(got.size(), store.names().size());
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_TRUE(bit_equal(want[i], got[i])) << store.names()[i] << " differs";
}

void expect_same_optimizer(const emt::Optimizer& want, const emt::Optimizer& got) {
  EXPECT_EQ(want.step_count(), got.step_count());
  ASSERT_EQ(want.state().size(), got.state().size());
  for (const auto& [name, buffer] : want.state()) {
    auto it = got.state().find(name);
    ASSERT_NE(it, got.state().end()) << "optimizer buffer " << name << " missing";
    EXPECT_TRUE(bit_equal(buffer, it->second)) << "optimizer buffer " << name << " differs";
  }
}

std::vector<emt::ParamSlot> trainable_slots(emt::ParamStore& store) {
  std::vector<emt::ParamSlot> slots;
  for (const std::string& name : store.names()) {
    emt::ParamEntry& e = store.at(name);
    if (!e.spec.trainable) continue;
    slots.push_back({name, e.value.data(), e.grad.data(), static_cast<int64_t>(e.value.size()),
                     e.spec.name == "weight" && e.spec.shape.size() > 1});
  }
  return slots;
}

std::vector<emt::Sample> phantom_samples(int count, int size) {
  emt::PhantomConfig cfg;
  cfg.count = count;
  cfg.seed = 7;
  cfg.min_side = 96;
  cfg.max_side = 128;
  std::vector<emt::Sample> samples;
  for (int i = 0; i < count; ++i)
    samples.push_back(emt::preprocess(emt::generate_phantom(cfg, i), size, 1, {}));
  return samples;
}

// ---------------------------------------------------------------------------------------------
// Whole-graph autodiff

using TrainingGradients = TrainingTest;

// Executor::backward() against central differences of Executor::objective() for EVERY element
// of every trainable parameter (the graph has about five hundred), at batch 3 in train mode.
// Batch norm's running statistics move on every forward but do not enter the train-mode output;
// the graph has no dropout, so the forward is a deterministic function of the parameters.
TEST_F(TrainingGradients, BackwardMatchesFiniteDifferencesForEveryParameter) {
  const GraphFile file = emt::parse_graph_file(write("grad.toml", kGradGraph));
  Model model(file, 11);
  constexpr int64_t kBatch = 3;
  Executor& exec = model.executor(kBatch, Mode::kTrain);

  std::mt19937_64 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::bernoulli_distribution coin(0.4);
  const Tensor image = exec.value("image");
  for (int64_t i = 0; i < image.numel(); ++i) image.data[i] = normal(rng);
  const Tensor label = exec.value("label");
  const float labels[kBatch] = {1.0f, 0.0f, 1.0f};  // both classes: pos_weight matters
  std::copy(labels, labels + kBatch, label.data);
  const Tensor mask = exec.value("mask");
  for (int64_t i = 0; i < mask.numel(); ++i) mask.data[i] = coin(rng) ? 1.0f : 0.0f;

  emt::ParamStore& store = model.params();
  store.zero_grads();
  exec.forward();
  const emt::ObjectiveValue at_start = exec.backward();
  ASSERT_EQ(at_start.terms.size(), 2u);
  EXPECT_GT(at_start.terms[0], 0.0);
  EXPECT_GT(at_start.terms[1], 0.0);
  EXPECT_NEAR(at_start.total, 3.0 * at_start.terms[0] + at_start.terms[1], 1e-12);

  // Which units of every ReLU are on: a central difference is only valid when f is smooth
  // between v - h and v + h, i.e. when no unit switches (all activations stay in the arena).
  std::vector<int> relus;
  for (const emt::Step& step : exec.program().steps)
    if (step.node->op == "relu") relus.push_back(step.output);
  ASSERT_EQ(relus.size(), 2u);
  auto relu_pattern = [&]() {
    std::vector<bool> on;
    for (int v : relus) {
      const Tensor t = exec.value(v);
      for (int64_t i = 0; i < t.numel(); ++i) on.push_back(t.data[i] > 0.0f);
    }
    return on;
  };
  const std::vector<bool> base_pattern = relu_pattern();
  // Forward at the current parameters; false if a ReLU unit switched against the base point.
  auto objective_at = [&](double& f) {
    exec.forward();
    f = exec.objective().total;
    return relu_pattern() == base_pattern;
  };
  double f_again = 0;
  EXPECT_TRUE(objective_at(f_again));
  EXPECT_EQ(f_again, at_start.total) << "forward must be deterministic";

  // Tolerance. The forward runs in float32, so the objective f carries a rounding error of
  // about FLT_EPSILON/2 * |f| that does not vary smoothly with the parameter, and the quotient
  // a noise of about FLT_EPSILON * |f| / (2h): ~4e-5 at h = 4e-3, ~1.6e-4 at h = 1e-3 (the
  // largest seen over 50 init seeds is 0.8x that). The truncation error h^2 f'''/6 stays below
  // 0.3% of the derivative at h = 4e-3 (c1's, through batch norm, is the largest). Allowing 4x
  // the noise plus 1% of the derivative leaves a wide margin for both, while a missing fan-out
  // branch, a dropped term weight (x3) or a wrong batch-norm gradient is off by O(1).
  const double noise_per_h = FLT_EPSILON * std::abs(at_start.total) / 2;
  int checked = 0, trainable = 0, kinked = 0;
  for (const std::string& name : store.names()) {
    emt::ParamEntry& e = store.at(name);
    if (!e.spec.trainable) {
      EXPECT_TRUE(e.grad.empty()) << name;
      continue;
    }
    ++trainable;
    ASSERT_EQ(e.grad.size(), e.value.size()) << name;
    double grad_norm = 0;
    int tensor_checked = 0;
    for (size_t i = 0; i < e.value.size(); ++i) {
      const float v = e.value[i];
      // h = 4e-3, else 1e-3 if a ReLU unit switched inside [v - h, v + h].
      bool smooth = false;
      double numeric = 0, h_used = 0;
      for (float h = 4e-3f; !smooth && h > 5e-4f; h /= 4) {
        const float plus = v + h, minus = v - h;
        double f_plus = 0, f_minus = 0;
        e.value[i] = plus;
        smooth = objective_at(f_plus);
        e.value[i] = minus;
        smooth = objective_at(f_minus) && smooth;
        // The step actually taken, after rounding v +- h to float.
        h_used = (static_cast<double>(plus) - static_cast<double>(minus)) / 2;
        numeric = (f_plus - f_minus) / (2 * h_used);
      }
      e.value[i] = v;
      if (!smooth) {
        ++kinked;
        continue;
      }
      const double analytic = e.grad[i];
      EXPECT_NEAR(analytic, numeric, 4 * noise_per_h / h_used + 1e-2 * std::abs(numeric))
          << name << "[" << i << "] of " << e.value.size() << ", h " << h_used;
      grad_norm += analytic * analytic;
      ++checked;
      ++tensor_checked;
    }
    EXPECT_GE(2 * tensor_checked, static_cast<int>(e.value.size()))
        << name << ": most elements had a ReLU kink within 1e-3 of their value";
    EXPECT_GT(std::sqrt(grad_norm), 1e-4) << name << ": the gradient check saw only zeros";
  }
  // c1, bn1 (2), c2 (2), down (2), up (2), seg_logit (2), fc (2), cls_logit (2).
  EXPECT_EQ(trainable, 15);
  EXPECT_GT(checked, 450);
  EXPECT_LE(kinked, 26) << "over 5% of the elements had a ReLU kink within 1e-3 of their value";
}

// ---------------------------------------------------------------------------------------------
// Overfitting a handful of images

using TrainingOverfit = TrainingTest;

// Eight 32x32 phantoms in one batch, Adam on both terms: a working forward/backward/update loop
// drives the whole objective to near zero, however the loss is split between the heads.
TEST_F(TrainingOverfit, TinyNetworkFitsEightPhantoms) {
  const GraphFile file = emt::parse_graph_file(write("tiny.toml", kTinyGraph));
  const std::vector<emt::Sample> samples = phantom_samples(8, 32);
  int malignant = 0;
  for (const emt::Sample& s : samples) malignant += s.label;
  ASSERT_GT(malignant, 0);
  ASSERT_LT(malignant, 8);

  Model model(file, 3);
  Executor& exec = model.executor(8, Mode::kTrain);
  std::vector<const emt::Sample*> batch;
  for (const emt::Sample& s : samples) batch.push_back(&s);
  emt::load_batch(exec, batch);

  auto adam = emt::Optimizer::make({.kind = "adam"});
  const std::vector<emt::ParamSlot> slots = trainable_slots(model.params());
  double first = 0, last = 0;
  emt::ObjectiveValue value;
  int steps = 0;
  for (; steps < 400; ++steps) {
    exec.forward();
    model.params().zero_grads();
    value = exec.backward();
    ASSERT_TRUE(std::isfinite(value.total)) << "step " << steps;
    if (steps == 0) first = value.total;
    last = value.total;
    if (last < 0.05) break;
    adam->step(slots, 1e-2);
  }
  EXPECT_GT(first, 1.0);
  EXPECT_LT(last, 0.05) << "after " << steps << " steps: weighted_bce " << value.terms[0]
                        << ", dice " << value.terms[1];
}

// ---------------------------------------------------------------------------------------------
// Checkpoints

using TrainingCheckpoint = TrainingTest;

TEST_F(TrainingCheckpoint, RoundTripRestoresParamsOptimizerAndStateBitExactly) {
  const GraphFile file = emt::parse_graph_file(write("tiny.toml", kTinyGraph));
  const std::vector<emt::Sample> samples = phantom_samples(4, 32);
  std::vector<const emt::Sample*> batch;
  for (const emt::Sample& s : samples) batch.push_back(&s);

  // A few Adam steps, so the moments and the running statistics are non-trivial.
  Model trained(file, 1);
  auto adam = emt::Optimizer::make({.kind = "adam", .weight_decay = 1e-4});
  Executor& exec = trained.executor(4, Mode::kTrain);
  emt::load_batch(exec, batch);
  const std::vector<emt::ParamSlot> slots = trainable_slots(trained.params());
  for (int step = 0; step < 3; ++step) {
    exec.forward();
    trained.params().zero_grads();
    exec.backward();
    adam->step(slots, 1e-3);
  }
  const emt::TrainingState state{5, 1.25, 3, 42.5};
  const fs::path path = dir_ / "checkpoint.safetensors";
  const emt::CheckpointOwner owner{file.graph.name, "adam"};
  emt::save_checkpoint(path, owner, trained.params(), *adam, state);

  Model fresh(file, 2);
  auto fresh_adam = emt::Optimizer::make({.kind = "adam", .weight_decay = 1e-4});
  const std::vector<std::vector<float>> want = snapshot(trained.params());
  ASSERT_FALSE(bit_equal(want.front(), snapshot(fresh.params()).front()))
      << "another init seed must give other weights, or this test proves nothing";
  const emt::TrainingState loaded = emt::load_checkpoint(path, owner, fresh.params(), *fresh_adam);

  expect_bit_identical(fresh.params(), want, snapshot(fresh.params()));
  EXPECT_EQ(fresh_adam->step_count(), 3);
  EXPECT_FALSE(adam->state().empty());
  expect_same_optimizer(*adam, *fresh_adam);
  EXPECT_EQ(loaded.epochs_done, state.epochs_done);
  EXPECT_EQ(loaded.best_score, state.best_score);
  EXPECT_EQ(loaded.best_epoch, state.best_epoch);
  EXPECT_EQ(loaded.images_per_s, state.images_per_s);
}

TEST_F(TrainingCheckpoint, CheckpointOfAnotherGraphIsRefusedNamingBoth) {
  const GraphFile file = emt::parse_graph_file(write("tiny.toml", kTinyGraph));
  Model model(file, 1);
  auto adam = emt::Optimizer::make({.kind = "adam"});
  const fs::path path = dir_ / "checkpoint.safetensors";
  emt::save_checkpoint(path, {"other_graph", "adam"}, model.params(), *adam, {});
  try {
    emt::load_checkpoint(path, {file.graph.name, "adam"}, model.params(), *adam);
    ADD_FAILURE() << "loading a checkpoint of graph 'other_graph' into 'tiny' must throw";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("'other_graph'"), std::string::npos) << what;
    EXPECT_NE(what.find("'tiny'"), std::string::npos) << what;
    EXPECT_NE(what.find(path.string()), std::string::npos) << what;
  }
}

TEST_F(TrainingCheckpoint, CheckpointOfAnotherOptimizerKindIsRefused) {
  const GraphFile file = emt::parse_graph_file(write("tiny.toml", kTinyGraph));
  Model model(file, 1);
  auto adam = emt::Optimizer::make({.kind = "adam"});
  const fs::path path = dir_ / "checkpoint.safetensors";
  emt::save_checkpoint(path, {file.graph.name, "adam"}, model.params(), *adam, {});
  auto sgd = emt::Optimizer::make({.kind = "sgd"});
  try {
    emt::load_checkpoint(path, {file.graph.name, "sgd"}, model.params(), *sgd);
    ADD_FAILURE() << "an adam checkpoint cannot resume exactly with sgd";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("'adam' optimizer"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// Resume

using TrainingResume = TrainingTest;

// Two epochs in one Trainer against one epoch, a checkpoint, and the second epoch in a new
// Model + Trainer: the weights, running statistics, optimizer buffers and weight averages agree
// to the bit.
void expect_resume_bit_identical(const fs::path& dir, const std::vector<std::string>& settings) {
  const GraphFile file = emt::parse_graph_file(dir / "tiny.toml", settings);
  const emt::Dataset data = emt::load_dataset(file.config, 1);
  const uint64_t seed = static_cast<uint64_t>(file.config.get_int("train.seed"));

  Model straight(file, seed);
  emt::Trainer straight_trainer(straight, file.config, data);
  ASSERT_EQ(straight_trainer.epochs(), 2);
  ASSERT_GE(straight_trainer.steps_per_epoch(), 2);
  straight_trainer.run_epoch();
  straight_trainer.run_epoch();
  EXPECT_EQ(straight_trainer.state().epochs_done, 2);

  const fs::path path = dir / "checkpoint.safetensors";
  std::vector<std::vector<float>> after_one;
  {
    Model first(file, seed);
    emt::Trainer first_trainer(first, file.config, data);
    first_trainer.run_epoch();
    after_one = snapshot(first.params());
    emt::save_checkpoint(path, first_trainer.checkpoint_owner(), first.params(),
                         first_trainer.optimizer(), first_trainer.state(), first_trainer.average());
  }

  Model resumed(file, seed + 100);  // other initial weights: everything must come from the file
  emt::Trainer resumed_trainer(resumed, file.config, data);
  resumed_trainer.state() =
      emt::load_checkpoint(path, resumed_trainer.checkpoint_owner(), resumed.params(),
                           resumed_trainer.optimizer(), resumed_trainer.average());
  EXPECT_EQ(resumed_trainer.state().epochs_done, 1);
  resumed_trainer.run_epoch();
  EXPECT_EQ(resumed_trainer.state().epochs_done, 2);

  const std::vector<std::vector<float>> want = snapshot(straight.params());
  expect_bit_identical(straight.params(), want, snapshot(resumed.params()));
  expect_same_optimizer(straight_trainer.optimizer(), resumed_trainer.optimizer());
  EXPECT_EQ(resumed_trainer.state().best_epoch, straight_trainer.state().best_epoch);
  EXPECT_EQ(resumed_trainer.state().best_score, straight_trainer.state().best_score);
  ASSERT_EQ(straight_trainer.average() == nullptr, resumed_trainer.average() == nullptr);
  if (straight_trainer.average()) {
    const auto& want_averages = straight_trainer.average()->averages();
    const auto& got_averages = resumed_trainer.average()->averages();
    ASSERT_EQ(want_averages.size(), straight.params().names().size());
    ASSERT_EQ(got_averages.size(), want_averages.size());
    for (const auto& [name, average] : want_averages)
      EXPECT_TRUE(bit_equal(average, got_averages.at(name))) << "average of " << name;
  }

  // The second epoch moved every trainable tensor, so the comparison above can fail.
  for (size_t i = 0; i < want.size(); ++i) {
    if (straight.params().at(straight.params().names()[i]).spec.trainable) {
      EXPECT_FALSE(bit_equal(want[i], after_one[i]))
          << straight.params().names()[i] << " did not change in epoch 2";
    }
  }
}

TEST_F(TrainingResume, ResumedSecondEpochIsBitIdenticalToAnUninterruptedRun) {
  write("tiny.toml", kTinyGraph);
  expect_resume_bit_identical(dir_, kSmallData);
}

TEST_F(TrainingResume, ResumedSecondEpochWithWeightAverageIsBitIdentical) {
  write("tiny.toml", kTinyGraph);
  std::vector<std::string> settings = kSmallData;
  settings.push_back("train.ema_decay=0.9");
  expect_resume_bit_identical(dir_, settings);
}

// ---------------------------------------------------------------------------------------------
// The run pipeline

using TrainingPipeline = TrainingTest;

TEST_F(TrainingPipeline, RunWritesTheRunDirectoryAndResumeOfAFinishedRunOnlyEvaluates) {
  const GraphFile file = emt::parse_graph_file(write("tiny.toml", kTinyGraph), kSmallData);
  const fs::path out = dir_ / "run";
  std::ostringstream console;
  const emt::RunSummary summary = emt::run_pipeline(file, {.out_dir = out, .console = &console});
  EXPECT_EQ(summary.dir, out);

  for (const char* name : {emt::kConfigFile, emt::kLogFile, emt::kHistoryFile, emt::kMetricsFile,
                           emt::kPerImageFile, emt::kWeightsFile, emt::kCheckpointFile})
    EXPECT_TRUE(fs::is_regular_file(out / name)) << name << " missing from " << out;

  // history.csv: a header and one row per epoch.
  const std::string history = read_text(out / emt::kHistoryFile);
  const std::vector<std::string> history_rows = split(history, '\n');
  ASSERT_EQ(history_rows.size(), 3u) << history;
  EXPECT_EQ(history_rows[0].rfind("epoch,", 0), 0u) << history;
  EXPECT_EQ(history_rows[1].rfind("1,", 0), 0u) << history;
  EXPECT_EQ(history_rows[2].rfind("2,", 0), 0u) << history;
  EXPECT_NE(read_text(out / emt::kConfigFile).find("input_size"), std::string::npos);
  EXPECT_NE(read_text(out / emt::kLogFile).find("epoch 2/2 step"), std::string::npos);

  std::ifstream metrics_in(out / emt::kMetricsFile);
  const nlohmann::json metrics = nlohmann::json::parse(metrics_in);
  for (const char* key : {"acc", "sen", "spe", "auc", "dsc", "iou"}) {
    ASSERT_TRUE(metrics.contains(key)) << key << " missing: " << metrics.dump();
    ASSERT_TRUE(metrics[key].is_number()) << key << ": " << metrics.dump();
    const double v = metrics[key].get<double>();
    EXPECT_GE(v, 0.0) << key;
    EXPECT_LE(v, 1.0) << key;
  }

  // per_image.csv: one row per test image; its label/predicted columns give metrics.json's acc.
  const emt::Dataset data = emt::load_dataset(file.config, 1);
  const std::vector<std::string> rows = split(read_text(out / emt::kPerImageFile), '\n');
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows[0], "id,label,prob,predicted,dice,iou");
  ASSERT_EQ(rows.size() - 1, data.split.test.size());
  int correct = 0;
  for (size_t r = 1; r < rows.size(); ++r) {
    const std::vector<std::string> cols = split(rows[r], ',');
    ASSERT_GE(cols.size(), 4u) << rows[r];
    ASSERT_TRUE(cols[1] == "0" || cols[1] == "1") << rows[r];
    ASSERT_TRUE(cols[3] == "0" || cols[3] == "1") << rows[r];
    correct += cols[1] == cols[3] ? 1 : 0;
  }
  EXPECT_DOUBLE_EQ(metrics["acc"].get<double>(),
                   static_cast<double>(correct) / static_cast<double>(rows.size() - 1));
  EXPECT_EQ(metrics["n"].get<size_t>(), data.split.test.size());

  // Resuming the finished run trains nothing and scores the same weights the same way.
  const std::string log_before = read_text(out / emt::kLogFile);
  const emt::RunSummary again = emt::run_pipeline(file, {.out_dir = out, .resume = true});
  EXPECT_EQ(read_text(out / emt::kHistoryFile), history) << "the resumed run trained";
  const std::string log_after = read_text(out / emt::kLogFile);
  ASSERT_EQ(log_after.rfind(log_before, 0), 0u) << "resume must append to the log";
  const std::string appended = log_after.substr(log_before.size());
  EXPECT_NE(appended.find("resumed from"), std::string::npos) << appended;
  EXPECT_EQ(appended.find(" step "), std::string::npos) << "the resumed run trained:\n" << appended;
  EXPECT_EQ(again.best_epoch, summary.best_epoch);
  EXPECT_EQ(again.test.cls.acc, summary.test.cls.acc);
  EXPECT_EQ(again.test.cls.auc, summary.test.cls.auc);
  EXPECT_EQ(again.test.cls.sen, summary.test.cls.sen);
  EXPECT_EQ(again.test.cls.spe, summary.test.cls.spe);
  EXPECT_EQ(again.test.seg.dsc, summary.test.seg.dsc);
  EXPECT_EQ(again.test.seg.iou, summary.test.seg.iou);
  EXPECT_EQ(again.test.loss, summary.test.loss);
  std::ifstream metrics_again_in(out / emt::kMetricsFile);
  const nlohmann::json metrics_again = nlohmann::json::parse(metrics_again_in);
  for (const char* key : {"acc", "sen", "spe", "auc", "dsc", "iou", "loss"})
    EXPECT_EQ(metrics_again[key], metrics[key]) << key;
}

}  // namespace
