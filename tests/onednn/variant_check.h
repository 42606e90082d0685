// Checks a backend variant against the reference kernel of its op on one case: same inference,
// same outputs, and gradients that accumulate into the engine's buffers as the reference's do.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "ops/core/variant.h"
#include "tests/ops/op_test_util.h"

namespace emt::test {

// Which gradients the variant is asked for; a skipped one is a null tensor it must not touch.
struct Wanted {
  bool input = true, weight = true, bias = true;
};

// Adds a failure with a one-line repro ("<repro> <what> max_abs_err=.. tol=..") unless every
// element agrees within the variant tolerance (see variant_check.cpp).
void expect_close(const std::string& repro, const std::string& what, const std::vector<float>& got,
                  const std::vector<float>& want);

// OpHarness::backward zeroes the gradients first; the engine does not, and neither does this.
void backward_accumulating(OpHarness& h);

// Every value of every buffer from U(-1, 1).
void fill(std::vector<std::vector<float>>& bufs, std::mt19937& rng);

// Runs the reference and the variant on the same data, twice: the second pass reuses the
// variant's cached primitives, must overwrite the outputs and add to the gradients once more.
// `repro` is the one-line description printed with each failure.
void check_variant(const OpVariant& variant, const Attrs& attrs, const std::vector<Shape>& shapes,
                   const std::string& repro, uint32_t seed, Wanted wanted = {});

}  // namespace emt::test
