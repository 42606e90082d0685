#include "ops/loss/loss.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "ops/core/op_error.h"

namespace emt {
namespace {

// -(Wp y log sigma(z) + (1 - y) log(1 - sigma(z))), straight from the definition.
long double naive_wbce(long double z, long double y, long double pos_weight) {
  const long double sigma = 1.0L / (1.0L + std::exp(-z));
  return -(pos_weight * y * std::log(sigma) + (1.0L - y) * std::log(1.0L - sigma));
}

// Logits on a 1/64 grid, so z +- kFdStep are exact floats and finite differences see only the
// loss's own curvature, not input rounding.
constexpr double kFdStep = 1.0 / 1024.0;

std::vector<float> grid_values(std::mt19937& rng, size_t n, int lo, int hi) {
  std::uniform_int_distribution<int> k(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(k(rng)) / 64.0f;
  return v;
}

std::string error_message(const auto& fn) {
  try {
    fn();
  } catch (const OpError& e) {
    return e.what();
  }
  return "no OpError thrown";
}

TEST(WeightedBce, MatchesNaiveDefinitionWhereFinite) {
  const std::vector<float> targets = {0.0f, 1.0f, 0.25f, 0.7f};
  for (double pos_weight : {1.0, 1.5, 3.0}) {
    for (float z = -30.0f; z <= 30.0f; z += 0.25f) {
      for (float y : targets) {
        const float zs[] = {z};
        const float ys[] = {y};
        const double got = weighted_bce_with_logits(zs, ys, pos_weight);
        const long double want = naive_wbce(z, y, pos_weight);
        // The naive form loses digits in 1 - sigma near |z| = 30 (~1e-7 relative in long
        // double); the paper's ungrouped form would be off by ~1% at y = 0, z = -30.
        EXPECT_NEAR(got, static_cast<double>(want), 1e-6 * static_cast<double>(want) + 1e-18)
            << "z=" << z << " y=" << y << " pos_weight=" << pos_weight;
      }
    }
  }
}

TEST(WeightedBce, IsTheMeanOverElements) {
  const std::vector<float> z = {-2.0f, 0.5f, 3.0f, -0.25f, 7.0f};
  const std::vector<float> y = {1.0f, 0.0f, 1.0f, 0.5f, 0.0f};
  long double want = 0;
  for (size_t i = 0; i < z.size(); ++i) want += naive_wbce(z[i], y[i], 1.5L);
  want /= z.size();
  EXPECT_NEAR(weighted_bce_with_logits(z, y, 1.5), static_cast<double>(want), 1e-14);
}

TEST(WeightedBce, ExactAndFiniteAtHugeLogits) {
  struct Case {
    float z, y;
    double want_loss, want_grad;
  };
  constexpr double kWp = 1.5;
  // Asymptotic closed forms: a saturated wrong answer costs |z| (times Wp for a missed
  // positive) and has slope 1 (Wp); a saturated right answer costs nothing.
  const Case cases[] = {
      {1e4f, 0.0f, 1e4, 1.0},   {-1e4f, 1.0f, kWp * 1e4, -kWp},
      {1e4f, 1.0f, 0.0, 0.0},   {-1e4f, 0.0f, 0.0, 0.0},
      {1e4f, 0.5f, 0.5e4, 0.5}, {-1e4f, 0.5f, 0.5 * kWp * 1e4, -0.5 * kWp},
  };
  for (const Case& c : cases) {
    const float zs[] = {c.z};
    const float ys[] = {c.y};
    float grad[] = {0.0f};
    const double loss = weighted_bce_with_logits(zs, ys, kWp, grad);
    EXPECT_EQ(loss, c.want_loss) << "z=" << c.z << " y=" << c.y;
    EXPECT_EQ(grad[0], static_cast<float>(c.want_grad)) << "z=" << c.z << " y=" << c.y;
  }
}

TEST(WeightedBce, PosWeightOneIsPlainBce) {
  std::mt19937 rng(3);
  const std::vector<float> z = grid_values(rng, 200, -64 * 20, 64 * 20);
  std::vector<float> y(z.size());
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (float& v : y) v = u(rng) < 0.3f ? u(rng) : static_cast<float>(rng() % 2);
  double plain = 0;  // the textbook stable form max(z, 0) - z y + log(1 + e^-|z|)
  for (size_t i = 0; i < z.size(); ++i) {
    plain += std::max<double>(z[i], 0.0) - static_cast<double>(z[i]) * y[i] +
             std::log1p(std::exp(-std::abs(static_cast<double>(z[i]))));
  }
  plain /= static_cast<double>(z.size());
  EXPECT_NEAR(weighted_bce_with_logits(z, y, 1.0), plain, 1e-12 * plain);
}

TEST(WeightedBce, GradientMatchesFiniteDifferencesAndAccumulates) {
  std::mt19937 rng(5);
  const std::vector<float> z = grid_values(rng, 40, -64 * 8, 64 * 8);
  std::vector<float> y(z.size());
  for (size_t i = 0; i < y.size(); ++i) y[i] = i % 3 == 2 ? 0.375f : static_cast<float>(i % 2);
  constexpr double kWp = 1.5, kScale = 2.5;
  constexpr float kPrior = 0.5f;  // must be kept: backward kernels accumulate
  std::vector<float> grad(z.size(), kPrior);
  weighted_bce_with_logits(z, y, kWp, grad, kScale);
  for (size_t i = 0; i < z.size(); ++i) {
    std::vector<float> zp = z, zm = z;
    zp[i] = static_cast<float>(z[i] + kFdStep);
    zm[i] = static_cast<float>(z[i] - kFdStep);
    const double numeric =
        kScale * (weighted_bce_with_logits(zp, y, kWp) - weighted_bce_with_logits(zm, y, kWp)) /
        (2 * kFdStep);
    EXPECT_NEAR(grad[i] - kPrior, numeric, 1e-6) << "element " << i << " z=" << z[i];
  }
}

TEST(WeightedBce, RejectsMismatchedSizes) {
  const std::vector<float> z(4), y(3);
  const std::string msg = error_message([&] { weighted_bce_with_logits(z, y, 1.5); });
  EXPECT_NE(msg.find('4'), std::string::npos) << msg;
  EXPECT_NE(msg.find('3'), std::string::npos) << msg;
  std::vector<float> grad(3);
  EXPECT_THROW(weighted_bce_with_logits(z, z, 1.5, grad), OpError);
  EXPECT_THROW(weighted_bce_with_logits({}, {}, 1.5), OpError);
}

TEST(Dice, EmptyTargetAndEmptyPredictionIsPerfect) {
  const std::vector<float> p(64, 0.0f), y(64, 0.0f);
  std::vector<float> grad(64, 0.0f);
  EXPECT_EQ(soft_dice_loss(p, y, 1, 1.0, grad), 0.0);
  for (float g : grad) EXPECT_TRUE(std::isfinite(g));
}

TEST(Dice, EmptyTargetWithPredictionCostsItsMass) {
  const std::vector<float> p = {0.5f, 0.5f, 0.5f, 0.5f}, y(4, 0.0f);
  // 1 - eps / (S + eps) with S = 2, eps = 1
  EXPECT_NEAR(soft_dice_loss(p, y, 1), 2.0 / 3.0, 1e-15);
  std::vector<float> grad(4, 0.0f);
  soft_dice_loss(p, y, 1, 1.0, grad);
  for (float g : grad) EXPECT_NEAR(g, 1.0 / 9.0, 1e-7);  // eps / (S + eps)^2: pushes p down
}

TEST(Dice, FullMaskPerfectPredictionIsZero) {
  const std::vector<float> p(2 * 16, 1.0f), y(2 * 16, 1.0f);
  EXPECT_NEAR(soft_dice_loss(p, y, 2), 0.0, 1e-15);
}

TEST(Dice, PartialOverlapHandComputed) {
  // sample 0: sum yp = 1.3, sum y = 2, sum p = 1.5 -> 1 - 3.6 / 4.5 = 0.2
  // sample 1: sum yp = 0.5, sum y = 1, sum p = 1.0 -> 1 - 2.0 / 3.0 = 1/3
  const std::vector<float> p = {0.9f, 0.4f, 0.2f, 0.0f, 0.5f, 0.0f, 0.5f, 0.0f};
  const std::vector<float> y = {1.0f, 1.0f, 0.0f, 0.0f, 1.0f, 0.0f, 0.0f, 0.0f};
  EXPECT_NEAR(soft_dice_loss(p, y, 1, 1.0), 1.0 - (2 * (1.3 + 0.5) + 1) / (3.0 + 2.5 + 1), 1e-7);
  EXPECT_NEAR(soft_dice_loss(p, y, 2, 1.0), (0.2 + 1.0 / 3.0) / 2, 1e-7);
}

TEST(Dice, GradientMatchesFiniteDifferencesAndAccumulates) {
  std::mt19937 rng(9);
  constexpr int64_t kBatch = 3;
  const std::vector<float> p = grid_values(rng, kBatch * 10, 0, 64);
  std::vector<float> y(p.size(), 0.0f);  // sample 0: hard mask, sample 1: soft, sample 2: empty
  for (size_t i = 0; i < 10; ++i) y[i] = static_cast<float>(i % 3 == 0);
  for (size_t i = 10; i < 20; ++i) y[i] = static_cast<float>(i % 5) / 4.0f;
  constexpr double kScale = 0.75;
  constexpr float kPrior = -0.25f;
  std::vector<float> grad(p.size(), kPrior);
  soft_dice_loss(p, y, kBatch, 1.0, grad, kScale);
  for (size_t i = 0; i < p.size(); ++i) {
    std::vector<float> pp = p, pm = p;
    pp[i] = static_cast<float>(p[i] + kFdStep);
    pm[i] = static_cast<float>(p[i] - kFdStep);
    const double numeric =
        kScale * (soft_dice_loss(pp, y, kBatch) - soft_dice_loss(pm, y, kBatch)) / (2 * kFdStep);
    EXPECT_NEAR(grad[i] - kPrior, numeric, 1e-6) << "element " << i;
  }
}

TEST(Dice, RejectsBadArguments) {
  const std::vector<float> p(6), y(5);
  EXPECT_THROW(soft_dice_loss(p, y, 1), OpError);
  EXPECT_THROW(soft_dice_loss(p, p, 4), OpError);  // 6 elements do not split into 4 samples
  EXPECT_THROW(soft_dice_loss(p, p, 0), OpError);
  EXPECT_THROW(soft_dice_loss(p, p, 1, 0.0), OpError);
}

// The EMT-Net objective with the paper's best weights: 3 * WBCE(Wp = 1.5) + Dice.
struct EmtObjectiveFixture : ::testing::Test {
  static constexpr double kWp = 1.5, kWc = 3.0;
  Objective objective{{
      {LossKind::kWeightedBce, "cls_logit", "label", kWc, kWp, 1.0},
      {LossKind::kDice, "seg_prob", "mask", 1.0, 1.0, 1.0},
  }};
  std::vector<float> logits = {2.0f, -1.0f, 0.5f, -3.0f};
  std::vector<float> labels = {1.0f, 0.0f, 0.0f, 1.0f};
  std::vector<float> probs = {0.9f, 0.1f, 0.8f, 0.2f, 0.0f, 0.3f, 0.0f, 0.6f};
  std::vector<float> masks = {1.0f, 0.0f, 1.0f, 0.0f, 0.0f, 0.0f, 0.0f, 1.0f};
  std::vector<float> grad_logits = std::vector<float>(4, 1.0f);
  std::vector<float> grad_probs = std::vector<float>(8, 1.0f);

  TermBinding cls() {
    return {{logits.data(), {4, 1}}, {labels.data(), {4}}, {grad_logits.data(), {4, 1}}};
  }
  TermBinding seg() {
    return {{probs.data(), {2, 1, 2, 2}},
            {masks.data(), {2, 1, 2, 2}},
            {grad_probs.data(), {2, 1, 2, 2}}};
  }
};

TEST_F(EmtObjectiveFixture, CombinesWeightedTermsAndAccumulatesWeightedGradients) {
  const TermBinding bindings[] = {cls(), seg()};
  const ObjectiveValue v = evaluate_objective(objective, bindings);

  std::vector<float> want_grad_logits(4, 1.0f), want_grad_probs(8, 1.0f);
  const double wbce = weighted_bce_with_logits(logits, labels, kWp, want_grad_logits, kWc);
  const double dice = soft_dice_loss(probs, masks, 2, 1.0, want_grad_probs, 1.0);
  ASSERT_EQ(v.terms.size(), 2u);
  EXPECT_EQ(v.terms[0], wbce);
  EXPECT_EQ(v.terms[1], dice);
  EXPECT_EQ(v.total, kWc * wbce + dice);
  EXPECT_EQ(grad_logits, want_grad_logits);
  EXPECT_EQ(grad_probs, want_grad_probs);

  // Independent of the functions above: the per-sample Dice and naive WBCE by hand.
  long double naive = 0;
  for (size_t i = 0; i < 4; ++i) naive += naive_wbce(logits[i], labels[i], kWp);
  const double dice0 = 1.0 - (2 * 1.7 + 1) / (2.0 + 2.0 + 1);
  const double dice1 = 1.0 - (2 * 0.6 + 1) / (1.0 + 0.9 + 1);
  EXPECT_NEAR(v.total, kWc * static_cast<double>(naive / 4) + (dice0 + dice1) / 2, 1e-6);
}

TEST_F(EmtObjectiveFixture, NullGradientIsSkipped) {
  TermBinding c = cls(), s = seg();
  c.grad_input = {};
  s.grad_input = {};
  const TermBinding bindings[] = {c, s};
  const ObjectiveValue v = evaluate_objective(objective, bindings);
  EXPECT_TRUE(std::isfinite(v.total));
  EXPECT_EQ(grad_logits, std::vector<float>(4, 1.0f));
  EXPECT_EQ(grad_probs, std::vector<float>(8, 1.0f));
}

TEST_F(EmtObjectiveFixture, MismatchesThrowWithBothShapes) {
  TermBinding c = cls();
  c.target.shape = {3};
  const TermBinding bad_size[] = {c, seg()};
  const std::string msg = error_message([&] { evaluate_objective(objective, bad_size); });
  EXPECT_NE(msg.find("[4,1]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[3]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("cls_logit"), std::string::npos) << msg;

  const TermBinding too_few[] = {cls()};
  EXPECT_THROW(evaluate_objective(objective, too_few), OpError);

  TermBinding s = seg();
  s.grad_input.shape = {2, 1, 2};
  const TermBinding bad_grad[] = {cls(), s};
  EXPECT_THROW(evaluate_objective(objective, bad_grad), OpError);
}

}  // namespace
}  // namespace emt
