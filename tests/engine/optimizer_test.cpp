#include "engine/train/optimizer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <stdexcept>
#include <vector>

#include "engine/train/lr_schedule.h"

namespace emt {
namespace {

// One parameter tensor with its gradient, as the trainer would hand it over.
struct Param {
  std::string name;
  std::vector<float> value, grad;
  bool decay = true;
  ParamSlot slot() {
    return {name, value.data(), grad.data(), static_cast<int64_t>(value.size()), decay};
  }
};

void step(Optimizer& opt, std::vector<Param>& params, double lr) {
  std::vector<ParamSlot> slots;
  for (Param& p : params) slots.push_back(p.slot());
  opt.step(slots, lr);
}

TEST(Adam, FirstStepMovesEachWeightByLrTimesSignOfGradient) {
  auto adam = Optimizer::make({.kind = "adam"});
  std::vector<Param> params = {{"w", {1.0f, 1.0f, 1.0f, 1.0f}, {1e-3f, -0.5f, 100.0f, -3.0f}}};
  step(*adam, params, 0.01);
  // Bias correction makes m_hat = g and v_hat = g^2, so the step is lr g / (|g| + eps).
  const std::vector<float> want = {0.99f, 1.01f, 0.99f, 1.01f};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(params[0].value[i], want[i], 1e-6f);
  EXPECT_EQ(adam->step_count(), 1);
}

TEST(Adam, SecondStepMatchesHandComputedMoments) {
  auto adam = Optimizer::make({.kind = "adam", .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8});
  std::vector<Param> params = {{"w", {0.5f}, {2.0f}}};
  step(*adam, params, 0.1);
  params[0].grad = {-1.0f};
  step(*adam, params, 0.1);
  const double m = 0.9 * (0.1 * 2.0) + 0.1 * -1.0;       // 0.08
  const double v = 0.999 * (0.001 * 4.0) + 0.001 * 1.0;  // 0.004996
  const double m_hat = m / (1 - 0.9 * 0.9), v_hat = v / (1 - 0.999 * 0.999);
  const double want = 0.5 - 0.1 - 0.1 * m_hat / (std::sqrt(v_hat) + 1e-8);
  EXPECT_NEAR(params[0].value[0], want, 1e-6);
  EXPECT_NEAR(adam->state().at("adam.m/w")[0], m, 1e-7);
  EXPECT_NEAR(adam->state().at("adam.v/w")[0], v, 1e-9);
}

TEST(Sgd, MomentumMatchesHandUnrolledSteps) {
  auto sgd = Optimizer::make({.kind = "sgd", .momentum = 0.9});
  std::vector<Param> params = {{"w", {1.0f}, {0.0f}}};
  // f(w) = w^2, g = 2w, lr 0.1:
  //   v = 2,                 w = 1 - 0.2     = 0.8
  //   v = 1.8 + 1.6  = 3.4,  w = 0.8 - 0.34  = 0.46
  //   v = 3.06 + 0.92 = 3.98, w = 0.46 - 0.398 = 0.062
  const float want[] = {0.8f, 0.46f, 0.062f};
  for (float w : want) {
    params[0].grad[0] = 2.0f * params[0].value[0];
    step(*sgd, params, 0.1);
    EXPECT_NEAR(params[0].value[0], w, 1e-6f);
  }
  EXPECT_NEAR(sgd->state().at("sgd.v/w")[0], 3.98f, 1e-6f);
}

TEST(WeightDecay, AppliesOnlyToDecayParams) {
  for (const char* kind : {"sgd", "adam"}) {
    auto opt = Optimizer::make({.kind = kind, .weight_decay = 0.1});
    std::vector<Param> params = {{"conv.weight", {2.0f, -4.0f}, {0.0f, 0.0f}, true},
                                 {"bn.gamma", {2.0f, -4.0f}, {0.0f, 0.0f}, false}};
    step(*opt, params, 0.5);
    // With g = 0 both rules shrink w by lr * wd * w on the first step (SGD's v = wd w).
    EXPECT_NEAR(params[0].value[0], 1.9f, 1e-6f) << kind;
    EXPECT_NEAR(params[0].value[1], -3.8f, 1e-6f) << kind;
    EXPECT_EQ(params[1].value, (std::vector<float>{2.0f, -4.0f})) << kind;
  }
}

TEST(Optimizers, MinimiseAQuadratic) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-3.0f, 3.0f);
  std::vector<float> centre(16);
  for (float& c : centre) c = u(rng);
  for (const char* kind : {"sgd", "adam"}) {
    auto opt = Optimizer::make({.kind = kind});
    const LrSchedule schedule{.kind = "cosine", .base_lr = 0.1, .warmup_steps = 10};
    constexpr int64_t kSteps = 500;
    std::vector<Param> params = {
        {"w", std::vector<float>(centre.size(), 0.0f), std::vector<float>(centre.size())}};
    for (int64_t s = 0; s < kSteps; ++s) {
      for (size_t i = 0; i < centre.size(); ++i) {
        params[0].grad[i] = params[0].value[i] - centre[i];  // f = |w - c|^2 / 2
      }
      step(*opt, params, lr_at(schedule, s, kSteps));
    }
    for (size_t i = 0; i < centre.size(); ++i) {
      EXPECT_NEAR(params[0].value[i], centre[i], 1e-3f) << kind << " element " << i;
    }
  }
}

// Noisy gradients that depend on the weights and the step, so the trajectory is sensitive to
// every bit of the state.
void run_steps(Optimizer& opt, std::vector<Param>& params, int64_t from, int64_t to) {
  for (int64_t s = from; s < to; ++s) {
    std::mt19937 rng(static_cast<uint32_t>(s));
    std::normal_distribution<float> noise(0.0f, 0.1f);
    for (Param& p : params) {
      for (size_t i = 0; i < p.value.size(); ++i) p.grad[i] = 0.3f * p.value[i] + noise(rng);
    }
    step(opt, params, 1e-2 / static_cast<double>(s + 1));
  }
}

TEST(Optimizers, RestoredStateContinuesBitExactly) {
  for (const char* kind : {"sgd", "adam"}) {
    const OptimizerConfig config{.kind = kind, .weight_decay = 0.05};
    const std::vector<Param> initial = {{"a", {1.0f, -2.0f, 0.5f}, {0, 0, 0}, true},
                                        {"b", {0.25f, 3.0f}, {0, 0}, false}};

    std::vector<Param> straight = initial;
    auto uninterrupted = Optimizer::make(config);
    run_steps(*uninterrupted, straight, 0, 10);

    std::vector<Param> resumed = initial;
    auto first = Optimizer::make(config);
    run_steps(*first, resumed, 0, 5);
    auto second = Optimizer::make(config);  // as if loaded from a checkpoint
    second->state() = first->state();
    second->set_step_count(first->step_count());
    first.reset();
    run_steps(*second, resumed, 5, 10);

    EXPECT_EQ(second->step_count(), 10) << kind;
    EXPECT_EQ(second->state(), uninterrupted->state()) << kind;
    for (size_t p = 0; p < initial.size(); ++p) {
      EXPECT_EQ(resumed[p].value, straight[p].value) << kind << " param " << initial[p].name;
    }
  }
}

TEST(Optimizers, RejectsBadConfigsAndSlotsWithoutSideEffects) {
  EXPECT_THROW(Optimizer::make({.kind = "rmsprop"}), std::invalid_argument);
  EXPECT_THROW(Optimizer::make({.kind = "adam", .beta2 = 1.0}), std::invalid_argument);
  EXPECT_THROW(Optimizer::make({.kind = "sgd", .weight_decay = -1.0}), std::invalid_argument);

  auto adam = Optimizer::make({.kind = "adam"});
  std::vector<Param> twice = {{"w", {1.0f}, {1.0f}}, {"w", {1.0f}, {1.0f}}};
  EXPECT_THROW(step(*adam, twice, 0.1), std::invalid_argument);

  std::vector<Param> params = {{"w", {1.0f, 2.0f}, {1.0f, 1.0f}}};
  step(*adam, params, 0.1);
  const std::vector<float> after_one = params[0].value;
  std::vector<Param> resized = {{"w", {1.0f, 2.0f, 3.0f}, {1.0f, 1.0f, 1.0f}}};
  EXPECT_THROW(step(*adam, resized, 0.1), std::invalid_argument);
  EXPECT_EQ(adam->step_count(), 1);
  EXPECT_EQ(resized[0].value, (std::vector<float>{1.0f, 2.0f, 3.0f}));
  EXPECT_EQ(params[0].value, after_one);
}

TEST(LrSchedule, CosineWarmupMiddleAndEnd) {
  const LrSchedule s{.kind = "cosine", .base_lr = 1e-3, .warmup_steps = 10, .min_lr_ratio = 0.1};
  constexpr int64_t kTotal = 110;
  EXPECT_EQ(lr_at(s, 0, kTotal), 0.0);
  EXPECT_DOUBLE_EQ(lr_at(s, 5, kTotal), 5e-4);
  EXPECT_DOUBLE_EQ(lr_at(s, 10, kTotal), 1e-3);
  EXPECT_DOUBLE_EQ(lr_at(s, 60, kTotal), 1e-4 + 0.5 * 9e-4);  // half way through the decay
  EXPECT_DOUBLE_EQ(lr_at(s, 110, kTotal), 1e-4);
  EXPECT_DOUBLE_EQ(lr_at(s, 500, kTotal), 1e-4);
  EXPECT_GT(lr_at(s, 30, kTotal), lr_at(s, 31, kTotal));
}

TEST(LrSchedule, StepDecayAfterWarmupWithFloor) {
  LrSchedule s{.kind = "step", .base_lr = 0.1, .warmup_steps = 4, .step_every = 30};
  EXPECT_DOUBLE_EQ(lr_at(s, 2, 100), 0.05);
  EXPECT_DOUBLE_EQ(lr_at(s, 4, 100), 0.1);
  EXPECT_DOUBLE_EQ(lr_at(s, 33, 100), 0.1);
  EXPECT_DOUBLE_EQ(lr_at(s, 34, 100), 0.01);
  EXPECT_DOUBLE_EQ(lr_at(s, 69, 100), 0.001);
  s.min_lr_ratio = 0.05;
  EXPECT_DOUBLE_EQ(lr_at(s, 69, 100), 0.005);
}

TEST(LrSchedule, ConstantAndErrors) {
  const LrSchedule constant{.kind = "constant", .base_lr = 0.2, .warmup_steps = 4};
  EXPECT_DOUBLE_EQ(lr_at(constant, 1, 10), 0.05);
  EXPECT_DOUBLE_EQ(lr_at(constant, 1000, 10), 0.2);
  EXPECT_THROW(lr_at({.kind = "linear"}, 0, 10), std::invalid_argument);
  EXPECT_THROW(lr_at({.kind = "step"}, 0, 10), std::invalid_argument);  // step_every = 0
  EXPECT_THROW(lr_at({}, -1, 10), std::invalid_argument);
}

}  // namespace
}  // namespace emt
