#include "ops/relu6/relu6_neon.h"

#include <gtest/gtest.h>

#include "ops/relu6/relu6.h"
#include "tests/neon/neon_check.h"

namespace emt::test {
namespace {

TEST(Relu6Neon, BitIdenticalToReference) {
  check_activation_bitwise("relu6_neon", relu6_neon, relu6_ref);
}

}  // namespace
}  // namespace emt::test
