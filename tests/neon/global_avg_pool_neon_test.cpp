#include "ops/global_avg_pool/global_avg_pool_neon.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>

#include "tests/neon/neon_check.h"
#include "tests/ops/op_test_util.h"

namespace emt::test {
namespace {

// Planes from 1 to MobileNet's 7x7 and beyond, sizes on and off the 4- and 16-lane steps. The
// inputs have a mean far from 0, as relu outputs do, so that the float sums' rounding shows.
TEST(GlobalAvgPoolNeon, MatchesReferenceOp) {
  std::mt19937 rng(8);
  for (const Shape& shape : std::vector<Shape>{{1, 1, 1, 1},
                                               {3, 2, 1, 3},
                                               {1, 3, 2, 2},
                                               {3, 17, 1, 7},
                                               {1, 5, 3, 5},
                                               {3, 32, 7, 7},
                                               {1, 7, 13, 11},
                                               {1, 4, 4, 4},
                                               {1, 3, 112, 112}}) {
    OpHarness ref("global_avg_pool", {}, {shape});
    ref.randomize(rng, -0.5f, 2.0f);
    ref.forward(Mode::kEval);
    const int64_t plane = shape[2] * shape[3];
    const std::string repro = "global_avg_pool_neon " + shape_str(shape);
    GuardedOutput y(shape[0] * shape[1]);
    global_avg_pool_neon(ref.inputs[0].data(), shape[0], shape[1], plane, y.data());
    // Each of the 16 float running sums rounds once per added element.
    expect_close(repro, y.values(repro), ref.outputs[0], 1e-7 * (4 + std::sqrt(plane)));
  }
}

}  // namespace
}  // namespace emt::test
