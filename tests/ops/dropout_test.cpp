#include <gtest/gtest.h>

#include <thread>

#include "ops/core/parallel.h"
#include "tests/ops/op_test_util.h"

namespace emt::test {
namespace {

Attrs dropout_attrs(double rate) {
  Attrs attrs;
  attrs.set("rate", rate);
  return attrs;
}

// Runs a train forward on an all-ones input, so the output is the scaled keep mask.
std::vector<float> mask_for(int64_t n, double rate, uint64_t seed) {
  OpHarness h("dropout", dropout_attrs(rate), {{1, n}});
  std::fill(h.inputs[0].begin(), h.inputs[0].end(), 1.0f);
  h.forward(Mode::kTrain, seed);
  return h.outputs[0];
}

TEST(Dropout, EvalIsIdentity) {
  OpHarness h("dropout", dropout_attrs(0.5), {{2, 3, 1, 1}});
  h.inputs[0] = {1, -2, 3.5f, 0, 7, -0.25f};
  h.forward(Mode::kEval);
  EXPECT_EQ(h.outputs[0], h.inputs[0]);
}

TEST(Dropout, RateZeroTrainIsIdentity) {
  OpHarness h("dropout", dropout_attrs(0.0), {{1, 5}});
  h.inputs[0] = {1, -2, 3.5f, 0, 7};
  h.forward(Mode::kTrain);
  EXPECT_EQ(h.outputs[0], h.inputs[0]);
}

TEST(Dropout, TrainKeepsOrZeroesAndScalesBySurvivalProbability) {
  const std::vector<float> mask = mask_for(1000, 0.75, 1);
  for (float v : mask) EXPECT_TRUE(v == 0.0f || v == 4.0f) << v;
}

TEST(Dropout, MaskIsAFunctionOfTheSeed) {
  EXPECT_EQ(mask_for(1000, 0.5, 11), mask_for(1000, 0.5, 11));
  EXPECT_NE(mask_for(1000, 0.5, 11), mask_for(1000, 0.5, 12));
  // Hashing seed ^ index directly would give seeds 10 and 11 one mask with neighbours swapped.
  const std::vector<float> a = mask_for(1000, 0.5, 10), b = mask_for(1000, 0.5, 11);
  std::vector<float> a_swapped(a.size());
  for (size_t i = 0; i < a.size(); ++i) a_swapped[i] = a[i ^ 1];
  EXPECT_NE(a_swapped, b);
}

// Splits the range into one std::thread per index, so chunks run concurrently in any order.
void thread_per_index_for(int64_t count, const RangeBody& body) {
  std::vector<std::thread> threads;
  for (int64_t i = count - 1; i >= 0; --i) threads.emplace_back([&body, i] { body(i, i + 1); });
  for (std::thread& t : threads) t.join();
}

TEST(Dropout, MaskDoesNotDependOnThreadScheduling) {
  const std::vector<float> serial = mask_for(200'000, 0.3, 5);
  set_parallel_for(thread_per_index_for);
  const std::vector<float> threaded = mask_for(200'000, 0.3, 5);
  set_parallel_for(nullptr);
  EXPECT_EQ(serial, threaded);
}

TEST(Dropout, KeptFractionAndExpectationMatchTheRate) {
  constexpr int64_t kN = 100'000;
  for (double rate : {0.1, 0.5, 0.8}) {
    OpHarness h("dropout", dropout_attrs(rate), {{1, kN}});
    std::mt19937 rng(8);
    h.randomize(rng, 0.0f, 2.0f);
    h.forward(Mode::kTrain, 123);
    int64_t kept = 0;
    double in_sum = 0, out_sum = 0;
    for (int64_t i = 0; i < kN; ++i) {
      kept += h.outputs[0][i] != 0.0f;
      in_sum += h.inputs[0][i];
      out_sum += h.outputs[0][i];
    }
    EXPECT_NEAR(static_cast<double>(kept) / kN, 1.0 - rate, 0.03) << "rate " << rate;
    EXPECT_NEAR(out_sum / in_sum, 1.0, 0.03) << "rate " << rate;
  }
}

TEST(Dropout, BackwardAppliesTheForwardMask) {
  OpHarness h("dropout", dropout_attrs(0.5), {{1, 64}});
  std::fill(h.inputs[0].begin(), h.inputs[0].end(), 1.0f);
  std::fill(h.grad_outputs[0].begin(), h.grad_outputs[0].end(), 3.0f);
  h.forward(Mode::kTrain, 9);
  h.backward();
  // With unit inputs and dy = 3, dx = 3 * (output): kept elements get 3 * 2, dropped ones 0.
  for (size_t i = 0; i < h.outputs[0].size(); ++i)
    EXPECT_EQ(h.grad_inputs[0][i], 3.0f * h.outputs[0][i]) << i;
}

TEST(Dropout, BackwardMatchesFiniteDifferences) {
  std::mt19937 rng(9);
  for (double rate : {0.5, 0.2}) {
    for (const Shape& shape : {Shape{2, 3, 5, 7}, Shape{1, 17}, Shape{1, 1}}) {
      const Attrs attrs = dropout_attrs(rate);
      OpHarness h("dropout", attrs, {shape});
      const GradCheckResult r = check_gradients(h, rng);  // the harness uses one fixed seed
      EXPECT_TRUE(r.ok) << describe_case("dropout", attrs, {shape})
                        << " max_abs_err=" << r.max_abs_err << " worst " << r.worst;
    }
  }
}

TEST(Dropout, RejectsRatesOutsideZeroToOne) {
  EXPECT_THROW(OpHarness("dropout", dropout_attrs(1.0), {{2, 3}}), OpError);
  EXPECT_THROW(OpHarness("dropout", dropout_attrs(-0.1), {{2, 3}}), OpError);
  OpHarness no_forward("dropout", dropout_attrs(0.5), {{2, 3}});
  EXPECT_THROW(no_forward.backward(), OpError);
}

}  // namespace
}  // namespace emt::test
