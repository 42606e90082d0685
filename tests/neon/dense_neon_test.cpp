#include "ops/dense/dense_neon.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>

#include "tests/neon/neon_check.h"
#include "tests/ops/op_test_util.h"

namespace emt::test {
namespace {

// Output counts below, on and past the 4-row tile, input lengths on and off the 4-lane step,
// EMT-Net's classifier (1024 -> 1), batch 1 and 3, with and without bias.
TEST(DenseNeon, MatchesReferenceOp) {
  std::mt19937 rng(6);
  uint32_t index = 0;
  for (int64_t in : {1, 3, 4, 7, 16, 33, 1024})
    for (int64_t out : {1, 2, 4, 5, 9, 17}) {
      const int64_t n = index % 2 == 0 ? 1 : 3;
      const bool bias = index++ % 3 != 0;
      Attrs attrs;
      attrs.set("out", out);
      attrs.set("bias", bias);
      OpHarness ref("dense", attrs, {{n, in}});
      ref.randomize(rng);
      ref.forward(Mode::kEval);
      const std::string repro = "dense_neon n" + std::to_string(n) + " in" + std::to_string(in) +
                                " out" + std::to_string(out) + " bias=" + std::to_string(bias);
      GuardedOutput y(n * out);
      dense_neon(ref.inputs[0].data(), ref.params[0].data(), bias ? ref.params[1].data() : nullptr,
                 n, in, out, y.data());
      expect_close(repro, y.values(repro), ref.outputs[0], 1e-5 * std::sqrt(in));
    }
}

}  // namespace
}  // namespace emt::test
