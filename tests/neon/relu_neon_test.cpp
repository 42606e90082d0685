#include "ops/relu/relu_neon.h"

#include <gtest/gtest.h>

#include "ops/relu/relu.h"
#include "tests/neon/neon_check.h"

namespace emt::test {
namespace {

TEST(ReluNeon, BitIdenticalToReference) {
  check_activation_bitwise("relu_neon", relu_neon, relu_ref);
}

}  // namespace
}  // namespace emt::test
