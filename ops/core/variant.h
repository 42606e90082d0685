// A backend variant of an op (oneDNN, NEON): same Op contract, same attributes and shapes as the
// reference kernel it must agree with. The engine asks each candidate whether it supports a node
// and prints the reasons under --verbose=dispatch.
#pragma once

#include <memory>
#include <span>
#include <string>

#include "ops/core/op.h"

namespace emt {

// Which activation layouts (Tensor::layout) a variant takes. The compiler keeps a value blocked
// only when its producer and every reader take blocked tensors.
enum class LayoutPolicy {
  kPlainOnly,
  kEach,     // each input and the output in its own layout (convolutions reorder as needed)
  kUniform,  // any layout, as long as the inputs and the output share it (elementwise, norms)
};

struct OpVariant {
  std::string op;       // schema name, e.g. "conv2d"
  std::string backend;  // "onednn", "neon"
  // Empty when this variant can run a node with these (complete) attributes and input shapes;
  // otherwise the reason it cannot ("groups=3 not supported").
  std::string (*supports)(const Attrs& attrs, std::span<const Shape> inputs) = nullptr;
  std::unique_ptr<Op> (*create)(const Attrs& attrs) = nullptr;
  LayoutPolicy layouts = LayoutPolicy::kPlainOnly;
  // Whether its forward takes bf16 activations (Tensor::dtype), for inference plans compiled
  // with bf16 precision. Params stay f32 whatever the activations are; a kUniform variant gets
  // one dtype for all its tensors, as it gets one layout.
  bool bf16 = false;
  // When set and true for a node, that node stays f32 even so: where the variant's f32 kernel
  // beats its bf16 one (a convolution to one output channel).
  bool (*prefers_f32)(const Attrs& attrs, std::span<const Shape> inputs) = nullptr;
};

}  // namespace emt
