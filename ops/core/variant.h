// A backend variant of an op (oneDNN, NEON): same Op contract, same attributes and shapes as the
// reference kernel it must agree with. The engine asks each candidate whether it supports a node
// and prints the reasons under --verbose=dispatch.
#pragma once

#include <memory>
#include <span>
#include <string>

#include "ops/core/op.h"

namespace emt {

struct OpVariant {
  std::string op;       // schema name, e.g. "conv2d"
  std::string backend;  // "onednn", "neon"
  // Empty when this variant can run a node with these (complete) attributes and input shapes;
  // otherwise the reason it cannot ("groups=3 not supported").
  std::string (*supports)(const Attrs& attrs, std::span<const Shape> inputs) = nullptr;
  std::unique_ptr<Op> (*create)(const Attrs& attrs) = nullptr;
};

}  // namespace emt
