// The graph IR: what a graph file means once includes, blocks and parameters are expanded.
// Every node has exactly one output, named like the node, so "value" and "node" share names.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "engine/ir/source_loc.h"
#include "ops/core/attrs.h"
#include "ops/core/tensor.h"
#include "ops/loss/loss.h"
#include "ops/op_id.h"

namespace emt {

struct Node {
  std::string name;
  std::string op;  // the op's name, for messages; code tests `id`
  Attrs attrs;     // complete: every schema attribute present with the schema's type
  std::vector<std::string> inputs;
  SourceLoc loc;
  OpId id{};  // the op's row in the op list
};

// A graph input (the image) or a training target (label, mask); shapes exclude the batch axis.
struct GraphInput {
  std::string name;
  Shape shape;
  SourceLoc loc;
};

struct GraphOutput {
  std::string name;   // public name: "cls", "seg"
  std::string value;  // the value it exposes
  SourceLoc loc;
};

// What a graph may ask the engine to allocate (the [limits] settings; these are their defaults).
struct TensorLimits {
  int64_t max_tensor_elements = int64_t{1} << 30;  // any one activation or parameter
  int64_t max_arena_bytes = int64_t{16} << 30;     // the activation arena of one plan
};

struct Graph {
  std::string name;
  SourceLoc loc;
  std::vector<GraphInput> inputs;
  std::vector<GraphInput> targets;
  std::vector<GraphOutput> outputs;
  std::vector<Node> nodes;  // in file order; the compiler orders them topologically
  // Block instance names are aliases of the instance's last value ("backbone.ds11").
  std::map<std::string, std::string> aliases;
  Objective objective;
  std::vector<SourceLoc> objective_locs;  // one per term
  std::vector<std::string> files;         // the main file first, then every included file
  TensorLimits limits;
};

// The value a name stands for: block aliases may chain (a nested block's alias points at another
// alias). std::logic_error for a chain longer than the alias table, which only a cycle makes.
std::string resolve_alias(const Graph& graph, std::string name);

}  // namespace emt
