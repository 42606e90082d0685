#include "ops/sigmoid/sigmoid_neon.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "ops/sigmoid/sigmoid.h"
#include "tests/neon/neon_check.h"

namespace emt::test {
namespace {

constexpr float kSaturation = 88.0f;

// The largest relative error against sigmoid_ref over x, with the worst x in repro form.
std::pair<double, float> worst_relative_error(const std::vector<float>& x) {
  std::vector<float> y(x.size());
  sigmoid_neon(x.data(), static_cast<int64_t>(x.size()), y.data());
  double worst = 0;
  float worst_x = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double want = sigmoid_ref(x[i]);
    const double err = std::abs(y[i] - want) / want;
    if (!(err <= worst)) {
      worst = std::isnan(err) ? std::numeric_limits<double>::infinity() : err;
      worst_x = x[i];
    }
  }
  return {worst, worst_x};
}

TEST(SigmoidNeon, WithinOnePpmOfReferenceUpToSaturation) {
  // A fine grid over [-88, 88] (steps of about 1e-4) and random points near 0, where the
  // range reduction's n changes sign, and near -88, where results are subnormal.
  std::vector<float> x;
  for (float v = -kSaturation; v <= kSaturation; v += 1.0f / 8192) x.push_back(v);
  std::mt19937 rng(3);
  for (float v : random_values(100000, rng, -1.0f, 1.0f)) x.push_back(v);
  for (float v : random_values(100000, rng, -kSaturation, -86.0f)) x.push_back(v);
  x.push_back(kSaturation);
  x.push_back(-kSaturation);
  const auto [worst, at] = worst_relative_error(x);
  EXPECT_LT(worst, 1e-6) << "sigmoid_neon x=" << at << " relative error " << worst;
}

TEST(SigmoidNeon, SaturatesExactlyBeyond88AndNeverReturnsNaN) {
  using limits = std::numeric_limits<float>;
  std::vector<float> x = {std::nextafter(kSaturation, 100.0f), 89.0f, 1e30f, limits::max(),
                          limits::infinity()};
  const size_t positive = x.size();
  for (size_t i = 0; i < positive; ++i) x.push_back(-x[i]);
  std::vector<float> y(x.size());
  sigmoid_neon(x.data(), static_cast<int64_t>(x.size()), y.data());
  for (size_t i = 0; i < x.size(); ++i)
    EXPECT_EQ(y[i], i < positive ? 1.0f : 0.0f) << "sigmoid_neon x=" << x[i];

  // Random bit patterns cover every finite magnitude.
  std::mt19937 rng(9);
  std::vector<float> finite;
  while (finite.size() < 200000) {
    const float v = std::bit_cast<float>(static_cast<uint32_t>(rng()));
    if (std::isfinite(v)) finite.push_back(v);
  }
  std::vector<float> out(finite.size());
  sigmoid_neon(finite.data(), static_cast<int64_t>(finite.size()), out.data());
  for (size_t i = 0; i < finite.size(); ++i)
    ASSERT_TRUE(out[i] >= 0.0f && out[i] <= 1.0f)
        << "sigmoid_neon x=" << finite[i] << " gave " << out[i];
}

TEST(SigmoidNeon, EveryTailLengthAndInPlace) {
  std::mt19937 rng(4);
  for (int64_t count = 0; count <= 21; ++count) {
    const std::vector<float> x = random_values(count, rng, -10.0f, 10.0f);
    const std::string repro = "sigmoid_neon count=" + std::to_string(count);
    GuardedOutput y(count);
    sigmoid_neon(x.data(), count, y.data());
    const std::vector<float> out = y.values(repro);
    std::vector<float> in_place = x;
    sigmoid_neon(in_place.data(), count, in_place.data());
    expect_bitwise_equal(repro + " in place", in_place, out);
    for (int64_t i = 0; i < count; ++i)
      EXPECT_NEAR(out[i], sigmoid_ref(x[i]), 1e-6 * sigmoid_ref(x[i])) << repro << " [" << i << "]";
  }
}

}  // namespace
}  // namespace emt::test
