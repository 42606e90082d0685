#include "tests/neon/neon_check.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace emt::test {

std::vector<float> random_values(int64_t count, std::mt19937& rng, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> values(count);
  for (float& v : values) v = dist(rng);
  return values;
}

std::vector<float> awkward_values(int64_t count, std::mt19937& rng) {
  using limits = std::numeric_limits<float>;
  const float specials[] = {limits::quiet_NaN(),
                            -limits::quiet_NaN(),
                            limits::infinity(),
                            -limits::infinity(),
                            0.0f,
                            -0.0f,
                            limits::denorm_min(),
                            -limits::denorm_min(),
                            limits::min(),
                            -limits::min(),
                            limits::max(),
                            -limits::max(),
                            6.0f,
                            std::nextafter(6.0f, 7.0f),
                            1.0f,
                            -1.0f};
  std::vector<float> values = random_values(count, rng, -8.0f, 8.0f);
  std::copy_n(specials, std::min<int64_t>(count, std::size(specials)), values.begin());
  return values;
}

GuardedOutput::GuardedOutput(int64_t count)
    : buffer_(count + 2 * kGuard, std::numeric_limits<float>::quiet_NaN()) {}

std::vector<float> GuardedOutput::values(const std::string& repro) const {
  const auto untouched = [](float v) { return std::isnan(v); };
  EXPECT_TRUE(std::all_of(buffer_.begin(), buffer_.begin() + kGuard, untouched) &&
              std::all_of(buffer_.end() - kGuard, buffer_.end(), untouched))
      << repro << ": wrote outside the output";
  return {buffer_.begin() + kGuard, buffer_.end() - kGuard};
}

void expect_close(const std::string& repro, const std::vector<float>& got,
                  const std::vector<float>& want, double rel_tol) {
  ASSERT_EQ(got.size(), want.size()) << repro;
  double scale = 0;
  for (float w : want) scale = std::max(scale, std::abs(static_cast<double>(w)));
  const double tol = rel_tol * scale;
  double worst = -1;
  size_t worst_at = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::abs(static_cast<double>(got[i]) - want[i]);
    if (!(err <= worst)) {  // NaN counts as the worst
      worst = std::isnan(err) ? std::numeric_limits<double>::infinity() : err;
      worst_at = i;
    }
  }
  EXPECT_GT(scale, 0) << repro << ": the reference output is all zeros";
  EXPECT_LE(worst, tol) << repro << " max_abs_err=" << worst << " at [" << worst_at << "] (got "
                        << got[worst_at] << ", want " << want[worst_at] << ") tol=" << tol;
}

void expect_bitwise_equal(const std::string& repro, const std::vector<float>& got,
                          const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size()) << repro;
  for (size_t i = 0; i < got.size(); ++i)
    if (std::bit_cast<uint32_t>(got[i]) != std::bit_cast<uint32_t>(want[i])) {
      ADD_FAILURE() << repro << ": [" << i << "] got " << got[i] << " (0x" << std::hex
                    << std::bit_cast<uint32_t>(got[i]) << "), want " << want[i] << " (0x"
                    << std::bit_cast<uint32_t>(want[i]) << ")";
      return;
    }
}

void check_activation_bitwise(const std::string& name,
                              void (*kernel)(const float*, int64_t, float*),
                              float (*reference)(float)) {
  std::mt19937 rng(11);
  for (int64_t count = 0; count <= 41; ++count) {
    const std::vector<float> x = awkward_values(count, rng);
    std::vector<float> want(count);
    std::transform(x.begin(), x.end(), want.begin(), reference);
    const std::string repro = name + " count=" + std::to_string(count);
    GuardedOutput y(count);
    kernel(x.data(), count, y.data());
    expect_bitwise_equal(repro, y.values(repro), want);
    std::vector<float> in_place = x;
    kernel(in_place.data(), count, in_place.data());
    expect_bitwise_equal(repro + " in place", in_place, want);
  }
}

}  // namespace emt::test
