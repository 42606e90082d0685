// Shared by the NEON tests: random data, guarded output buffers (an element the kernel leaves
// unwritten, or writes out of bounds, fails the check) and comparisons that print a one-line
// repro such as "conv2d_neon n1c3h9w9 o8 k3 s2 ... max_abs_err=3e-3 at [17] tol=1e-4".
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace emt::test {

std::vector<float> random_values(int64_t count, std::mt19937& rng, float lo = -1.0f,
                                 float hi = 1.0f);

// Finite and special values (NaN, infinities, signed zeros, subnormals, the extremes) for the
// elementwise kernels, count of them, the specials first.
std::vector<float> awkward_values(int64_t count, std::mt19937& rng);

// count floats between two guard regions, all NaN until written.
class GuardedOutput {
 public:
  explicit GuardedOutput(int64_t count);
  float* data() { return buffer_.data() + kGuard; }
  // The count written values; adds a failure naming repro if a guard element changed.
  std::vector<float> values(const std::string& repro) const;

 private:
  static constexpr int64_t kGuard = 16;
  std::vector<float> buffer_;
};

// Adds a failure with the repro unless |got - want| <= rel_tol * max |want| everywhere, and
// unless want holds a non-zero value (an all-zero reference cannot tell a kernel that only
// writes zeros). NaN where want is a number fails.
void expect_close(const std::string& repro, const std::vector<float>& got,
                  const std::vector<float>& want, double rel_tol);

// Adds a failure with the repro unless got and want agree bit for bit.
void expect_bitwise_equal(const std::string& repro, const std::vector<float>& got,
                          const std::vector<float>& want);

// An elementwise activation against its scalar reference, bit for bit: every count from 0 to
// past several vectors (the tails), awkward values, and in place.
void check_activation_bitwise(const std::string& name,
                              void (*kernel)(const float*, int64_t, float*),
                              float (*reference)(float));

}  // namespace emt::test
