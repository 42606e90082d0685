#include <algorithm>

#include "ops/core/parallel_elements.h"
#include "ops/dropout/dropout.h"

namespace emt {
namespace {

// One splitmix64 step: a bijection of 64-bit values whose outputs for consecutive inputs
// pass statistical tests, which makes it a counter-based generator with no state to share.
uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// The top 53 bits as a double in [0, 1): every value is exact, so rate compares without bias.
double unit_uniform(uint64_t bits) {
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

}  // namespace

Inferred DropoutOp::infer(std::span<const Shape> inputs) const {
  return {{inputs[0]}, {}, 0};
}

void DropoutOp::forward(const ForwardArgs& args) {
  const int64_t n = args.inputs[0].numel();
  const float* x = args.inputs[0].data;
  float* y = args.outputs[0].data;
  if (args.mode == Mode::kEval) {
    std::copy(x, x + n, y);
    return;
  }
  // Hashing the seed first: with seed ^ index alone, seeds s and s ^ 1 would produce the same
  // mask with neighbouring elements swapped.
  const uint64_t key = splitmix64(args.seed);
  keep_.resize(static_cast<size_t>(n));
  parallel_for_elements(n, [&](int64_t i) {
    const bool keep = unit_uniform(splitmix64(key ^ static_cast<uint64_t>(i))) >= rate_;
    keep_[i] = keep;
    y[i] = keep ? x[i] * scale_ : 0.0f;
  });
}

const OpSchema& dropout_schema() {
  static const OpSchema schema{
      "dropout",
      "inverted dropout in train mode, identity in eval mode",
      1,
      1,
      {{"rate", AttrType::kFloat, 0.5, "probability of zeroing an element, in [0, 1)"}},
      [](const Attrs& attrs) {
        const double rate = attrs.get_float("rate");
        if (!(rate >= 0 && rate < 1))
          throw OpError("dropout needs 0 <= rate < 1, got " + std::to_string(rate));
        return std::unique_ptr<Op>(std::make_unique<DropoutOp>(rate));
      }};
  return schema;
}

}  // namespace emt
