// A test that needs something the machine may lack (a model in ../shared, ONNX Runtime, ONNX's
// test data) skips without it; under CI=true it fails instead, so that a green CI run means the
// test ran. Skips for CPU features (bf16, AMX) stay skips: CI cannot install those.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string_view>

namespace emt::test {

inline bool ci_requires_dependencies() {
  const char* ci = std::getenv("CI");
  return ci && std::string_view(ci) == "true";
}

}  // namespace emt::test

// `reason` may be a chain of << operands: EMT_SKIP_MISSING(path << " is absent").
#define EMT_SKIP_MISSING(reason)                                            \
  do {                                                                      \
    if (emt::test::ci_requires_dependencies())                              \
      GTEST_FAIL() << "CI=true, so a missing dependency fails: " << reason; \
    GTEST_SKIP() << reason;                                                 \
  } while (0)
