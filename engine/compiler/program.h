// The compiled form of a graph for one batch size: values with shapes, steps in execution order
// (each owning its op instance), and parameters. Produced by compile(), consumed by backends.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/ir/graph.h"
#include "ops/core/op.h"

namespace emt {

enum class ValueKind { kInput, kTarget, kActivation };

// Which kernels run the steps: the plain-loop reference everywhere, or oneDNN variants where
// they support the node (the reference elsewhere, with the reason recorded).
enum class Backend { kReference, kOnednn };

const char* backend_name(Backend backend);
// Throws std::invalid_argument naming the accepted values.
Backend parse_backend(const std::string& name);

struct ValueInfo {
  std::string name;
  Shape shape;  // with the batch axis first
  ValueKind kind = ValueKind::kActivation;
  int producer = -1;           // step index; -1 for inputs and targets
  std::vector<int> consumers;  // step indices
};

struct ParamInfo {
  std::string name;  // "<node>.<local>", e.g. "backbone.ds1.dw.weight"
  ParamSpec spec;
};

struct Step {
  const Node* node = nullptr;
  std::unique_ptr<Op> op;
  std::vector<int> inputs;  // value indices
  int output = -1;
  std::vector<int> params;  // param indices
  int64_t macs_per_sample = 0;
  std::string impl = "reference";  // which kernel runs this step
  std::string dispatch_note;       // why a faster variant was not chosen (empty when it was)
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

  int value(const std::string& name) const;  // throws std::out_of_range naming the value
  int64_t trainable_param_count() const;
  int64_t state_param_count() const;  // batch-norm running statistics
  int64_t macs_per_sample() const;
};

// Validates names, order and shapes; every error is a GraphError at the node's file and line.
Program compile(std::shared_ptr<const Graph> graph, int64_t batch,
                Backend backend = Backend::kReference);

}  // namespace emt
