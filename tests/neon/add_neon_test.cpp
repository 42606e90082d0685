#include "ops/add/add_neon.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "tests/neon/neon_check.h"
#include "tests/ops/op_test_util.h"

namespace emt::test {
namespace {

// One float addition per element: equal to the reference op to the bit, out of place and in
// place on either operand, on every tail length.
TEST(AddNeon, BitIdenticalToReferenceOp) {
  std::mt19937 rng(5);
  for (const Shape& shape : std::vector<Shape>{
           {1, 1, 1, 1}, {1, 3, 1, 1}, {3, 1, 1, 5}, {1, 7, 3, 3}, {3, 17, 5, 7}, {1, 32, 8, 8}}) {
    OpHarness ref("add", {}, {shape, shape});
    ref.randomize(rng);
    ref.forward(Mode::kEval);
    const std::vector<float>& a = ref.inputs[0];
    const std::vector<float>& b = ref.inputs[1];
    const int64_t count = shape_numel(shape);
    const std::string repro = "add_neon " + shape_str(shape);
    GuardedOutput y(count);
    add_neon(a.data(), b.data(), count, y.data());
    expect_bitwise_equal(repro, y.values(repro), ref.outputs[0]);
    std::vector<float> into_a = a, into_b = b;
    add_neon(into_a.data(), b.data(), count, into_a.data());
    add_neon(a.data(), into_b.data(), count, into_b.data());
    expect_bitwise_equal(repro + " in place of a", into_a, ref.outputs[0]);
    expect_bitwise_equal(repro + " in place of b", into_b, ref.outputs[0]);
  }
}

}  // namespace
}  // namespace emt::test
