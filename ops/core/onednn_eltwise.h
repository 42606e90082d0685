// The activations (relu, relu6, sigmoid) on oneDNN's eltwise primitives: one implementation,
// parameterised by the algorithm, which each op's *_onednn.cpp names in an EltwiseSpec.
#pragma once

#include <memory>
#include <span>
#include <string>

#include "ops/core/onednn_context.h"
#include "ops/core/variant.h"

namespace emt::onednn {

struct EltwiseSpec {
  const OpSchema& (*schema)();  // the reference op: its name and shape rules
  // Forward and backward; a *_use_dst_for_bwd algorithm makes backward read the output instead
  // of the input.
  dnnl::algorithm algorithm;
  float alpha = 0, beta = 0;
};

std::string eltwise_supports(const EltwiseSpec& spec, const Attrs& attrs,
                             std::span<const Shape> inputs);
std::unique_ptr<Op> make_eltwise_op(const EltwiseSpec& spec, const Attrs& attrs);

// The variant of the op kSpec describes. OpVariant holds plain function pointers, so the spec
// reaches them as a template argument rather than a capture.
template <const EltwiseSpec& kSpec>
const OpVariant& eltwise_variant() {
  static const OpVariant variant{kSpec.schema().name,
                                 "onednn",
                                 [](const Attrs& attrs, std::span<const Shape> inputs) {
                                   return eltwise_supports(kSpec, attrs, inputs);
                                 },
                                 [](const Attrs& attrs) { return make_eltwise_op(kSpec, attrs); },
                                 LayoutPolicy::kUniform,
                                 /*bf16=*/true};
  return variant;
}

}  // namespace emt::onednn
