// The compiled form of a graph for one batch size: values with shapes, steps in execution order
// (each owning its op instance), and parameters. Produced by compile(), consumed by backends.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/ir/graph.h"
#include "ops/core/op.h"
#include "ops/core/variant.h"

namespace emt {

enum class ValueKind { kInput, kTarget, kActivation };

// Which kernels run the steps: the plain-loop reference everywhere, or oneDNN variants where
// they support the node (the reference elsewhere, with the reason recorded).
enum class Backend { kReference, kOnednn };

const char* backend_name(Backend backend);
// Throws std::invalid_argument naming the accepted values.
Backend parse_backend(const std::string& name);

// The element type of an inference plan's activations. bf16 is for inference only (a fused
// program): training and everything the engine reads or writes stay f32.
enum class Precision { kFp32, kBf16 };

const char* precision_name(Precision precision);
// Throws std::invalid_argument naming the accepted values.
Precision parse_precision(const std::string& name);

struct ValueInfo {
  std::string name;
  Shape shape;  // with the batch axis first
  ValueKind kind = ValueKind::kActivation;
  int producer = -1;           // step index; -1 for inputs and targets
  std::vector<int> consumers;  // step indices
  // In the arena, and so for its gradient too. Blocked only between variants that take it,
  // never for inputs, targets, outputs or what the objective reads.
  Layout layout = Layout::kPlain;
  // bf16 only in a bf16 plan, and only when blocked between variants that take bf16 (so never
  // for what the engine reads, nor for a reference kernel's tensor); the gradient, when there
  // is one, is always f32.
  DataType dtype = DataType::kF32;
};

struct ParamInfo {
  std::string name;  // "<node>.<local>", e.g. "backbone.ds1.dw.weight"
  ParamSpec spec;
};

// A batch norm folded into the convolution before it (inference fusion). The step's op then
// runs with derived params, weight * s and (bias - mean) * s + beta with
// s = gamma / sqrt(var + eps) per output channel. They are derived, not stored, because
// training keeps moving their sources: the executor recomputes them when the store changes.
struct BatchNormFold {
  int weight = -1, bias = -1;  // the convolution's params; bias is -1 when it has none
  int gamma = -1, beta = -1, mean = -1, var = -1;
  double eps = 1e-5;
  // The weight's output-channel axis: 0 for conv2d, 1 for conv_transpose2d ([Cin, Cout, K, K]).
  int channel_axis = 0;
};

struct Step {
  const Node* node = nullptr;
  std::unique_ptr<Op> op;
  std::vector<int> inputs;  // value indices
  int output = -1;
  // Param indices: what the op reads, or with a fold, the sources its params derive from.
  std::vector<int> params;
  int64_t macs_per_sample = 0;
  std::string impl = "reference";  // which kernel runs this step
  std::string dispatch_note;       // why a faster variant was not chosen (empty when it was)
  LayoutPolicy layouts = LayoutPolicy::kPlainOnly;  // of the kernel that runs it
  bool bf16 = false;                                // the kernel takes bf16 (OpVariant::bf16)
  // Inference fusion: the nodes this step absorbed (a batch norm, then an activation), whose
  // values the program no longer has, and how the batch norm's params fold into the op's.
  std::vector<const Node*> fused;
  std::optional<BatchNormFold> fold;
};

struct CompileOptions {
  // Rewrites the program for eval-mode inference: each batch norm folds into the convolution
  // before it and a following relu/relu6 becomes the convolution's activation (when they are
  // the only readers of what they consume), and dropout, the identity in eval, disappears.
  // The absorbed values leave the program and its memory plan; graph outputs and objective
  // inputs are never absorbed. Such a program runs only in Mode::kEval.
  bool fuse = false;
  // oneDNN backend: keeps activations channel-blocked (nChw16c) between the variants that take
  // that layout, so that they do not reorder at every op. Off: every activation is plain.
  bool blocked_layouts = true;
  // kBf16 (with fuse and the oneDNN backend on a CPU with AVX512-BF16 or AMX; otherwise
  // compile() throws saying which is missing): the blocked activations between variants that
  // take bf16 are stored and computed in bf16; weights are rounded to bf16 when the
  // convolutions reorder them, biases and accumulation stay f32.
  Precision precision = Precision::kFp32;
};

struct Program {
  std::shared_ptr<const Graph> graph;
  int64_t batch = 1;
  std::vector<ValueInfo> values;
  std::map<std::string, int> value_index;
  std::vector<Step> steps;  // topological order
  std::vector<ParamInfo> params;
  std::map<std::string, int> outputs;      // public output name -> value index
  std::vector<std::string> removed_nodes;  // dead code: feeds neither an output nor the objective
  Backend backend = Backend::kReference;
  bool fused = false;  // compiled with CompileOptions::fuse
  Precision precision = Precision::kFp32;
  std::vector<std::string> elided_nodes;  // removed by fusion as the identity in eval (dropout)

  int value(const std::string& name) const;  // throws std::out_of_range naming the value
  int64_t trainable_param_count() const;
  int64_t state_param_count() const;  // batch-norm running statistics
  int64_t macs_per_sample() const;
};

// Validates names, order and shapes; every error is a GraphError at the node's file and line.
Program compile(std::shared_ptr<const Graph> graph, int64_t batch,
                Backend backend = Backend::kReference, const CompileOptions& options = {});

}  // namespace emt
