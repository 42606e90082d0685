// The contract every op implements: shape inference, a forward reference kernel and its backward.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ops/core/attrs.h"
#include "ops/core/op_error.h"
#include "ops/core/tensor.h"

namespace emt {

enum class ParamInit {
  kHeNormal,  // N(0, 2 / fan_in): Kaiming for ReLU networks
  kZeros,
  kOnes,
};

struct ParamSpec {
  std::string name;  // local to the node: "weight", "bias", "gamma", "running_mean", ...
  Shape shape;
  ParamInit init = ParamInit::kZeros;
  int64_t fan_in = 1;
  // Running statistics are state, not parameters: saved in weights, never touched by the optimizer.
  bool trainable = true;
};

struct Inferred {
  std::vector<Shape> outputs;
  std::vector<ParamSpec> params;
  int64_t macs_per_sample = 0;  // multiply-accumulates of the forward pass for one batch item
};

enum class Mode { kTrain, kEval };

struct ForwardArgs {
  std::span<const Tensor> inputs;
  std::span<const Tensor> params;  // data is writable: batch norm updates its running statistics
  std::span<const Tensor> outputs;
  Mode mode = Mode::kEval;
  uint64_t seed = 0;  // per node and per step, for stochastic ops (dropout)
  // Moves whenever any parameter's data may have changed (ParamStore::version). Known, it lets
  // a backend keep weights it converted (reordered, packed) until they change; unknown, they
  // are converted on every call.
  std::optional<uint64_t> params_version = std::nullopt;
};

// Backward kernels ACCUMULATE into grad_inputs and grad_params (+=): the engine zeroes them once
// per step, so a value read by several ops (skip connections) sums its gradients for free.
// A grad tensor with null data is not needed and must be skipped.
struct BackwardArgs {
  std::span<const Tensor> inputs;
  std::span<const Tensor> params;
  std::span<const Tensor> outputs;
  std::span<const Tensor> grad_outputs;
  std::span<const Tensor> grad_inputs;
  std::span<const Tensor> grad_params;
  std::optional<uint64_t> params_version = std::nullopt;  // as in ForwardArgs
  // Bit i set: grad_inputs[i] still holds the zeros the engine filled it with (no other reader
  // of that input has added to it), so a kernel may write its gradient there instead of adding,
  // and save a pass over it. Kernels that ignore it stay correct.
  uint64_t zeroed_grad_inputs = 0;
  bool grad_input_zeroed(size_t i) const { return (zeroed_grad_inputs >> i) & 1; }
};

class Op {
 public:
  virtual ~Op() = default;
  // Throws OpError naming the offending shapes when the inputs do not fit.
  virtual Inferred infer(std::span<const Shape> inputs) const = 0;
  virtual void forward(const ForwardArgs& args) = 0;
  virtual void backward(const BackwardArgs& args) = 0;
};

struct OpSchema {
  std::string name;  // the op list's row name: find_op_id(name) is the op's id
  std::string summary;
  int min_inputs = 1;
  int max_inputs = 1;
  std::vector<AttrSpec> attrs;
  // attrs hold every schema attribute (defaults filled, types checked) when this is called.
  std::unique_ptr<Op> (*create)(const Attrs& attrs) = nullptr;
};

}  // namespace emt
