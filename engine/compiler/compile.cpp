#include <algorithm>
#include <functional>
#include <queue>
#include <set>
#include <stdexcept>

#include "engine/compiler/fusion.h"
#include "engine/compiler/layout.h"
#include "engine/compiler/program.h"
#include "ops/registry.h"
#include "ops/registry_onednn.h"

namespace emt {
namespace {

class Compiler {
 public:
  Compiler(std::shared_ptr<const Graph> graph, int64_t batch, Backend backend,
           const CompileOptions& options)
      : g_(*graph), options_(options) {
    p_.graph = std::move(graph);
    p_.batch = batch;
    p_.backend = backend;
  }

  Program run() {
    declare_inputs(g_.inputs, ValueKind::kInput);
    declare_inputs(g_.targets, ValueKind::kTarget);
    for (const Node& n : g_.nodes)
      if (p_.value_index.count(n.name))
        throw GraphError(n.loc, "node '" + n.name + "' has the name of a graph input or target");
    std::map<std::string, const Node*> producers;
    for (const Node& n : g_.nodes) producers[n.name] = &n;
    const std::vector<const Node*> order = topological_order(producers);
    const std::set<const Node*> live = live_nodes(producers);
    for (const Node* n : order) {
      if (live.count(n))
        add_step(*n);
      else
        p_.removed_nodes.push_back(n->name);
    }
    for (const GraphOutput& out : g_.outputs) p_.outputs[out.name] = lookup(out.value, out.loc);
    check_objective();
    p_.precision = options_.precision;
    if (options_.fuse) fuse_for_inference(p_);
    if (options_.blocked_layouts) assign_layouts(p_);
    if (options_.precision == Precision::kBf16) {
      check_bf16();
      assign_precision(p_);
    }
    return std::move(p_);
  }

 private:
  void declare_inputs(const std::vector<GraphInput>& inputs, ValueKind kind) {
    for (const GraphInput& in : inputs) {
      if (p_.value_index.count(in.name))
        throw GraphError(in.loc, "duplicate input name '" + in.name + "'");
      Shape shape{p_.batch};
      shape.insert(shape.end(), in.shape.begin(), in.shape.end());
      check_tensor_size(shape, in.loc, "input '" + in.name + "'");
      p_.value_index[in.name] = static_cast<int>(p_.values.size());
      p_.values.push_back({in.name, shape, kind, -1, {}});
    }
  }

  int lookup(const std::string& ref, const SourceLoc& loc, const Node* reader = nullptr) const {
    auto it = p_.value_index.find(resolve_alias(g_, ref));
    if (it != p_.value_index.end()) return it->second;
    std::string who =
        reader ? "node '" + reader->name + "' (op " + reader->op + ") reads" : "refers to";
    throw GraphError(loc, who + " '" + ref + "', but no node, block or input has that name");
  }

  // Kahn's algorithm with a min-heap on file position: a ready node is emitted in file order,
  // so plans read like the file, in O(n log n).
  std::vector<const Node*> topological_order(const std::map<std::string, const Node*>& producers) {
    const size_t n = g_.nodes.size();
    std::vector<std::vector<size_t>> readers(n);
    std::vector<size_t> pending(n, 0);  // inputs not yet ordered; nonzero at the end: a cycle
    for (size_t i = 0; i < n; ++i) {
      const Node& node = g_.nodes[i];
      for (const std::string& in : node.inputs) {
        const std::string target = resolve_alias(g_, in);
        auto it = producers.find(target);
        if (it != producers.end()) {
          readers[static_cast<size_t>(it->second - g_.nodes.data())].push_back(i);
          ++pending[i];
        } else if (!p_.value_index.count(target)) {
          lookup(in, node.loc, &node);  // throws the missing-name error
        }
      }
    }
    std::priority_queue<size_t, std::vector<size_t>, std::greater<>> ready;
    for (size_t i = 0; i < n; ++i)
      if (pending[i] == 0) ready.push(i);
    std::vector<const Node*> order;
    while (!ready.empty()) {
      const size_t i = ready.top();
      ready.pop();
      order.push_back(&g_.nodes[i]);
      for (size_t r : readers[i])
        if (--pending[r] == 0) ready.push(r);
    }
    if (order.size() < n) throw_cycle(producers, pending);
    return order;
  }

  // Walks unordered producers from the first unordered node until a node repeats: that walk's
  // tail is the cycle. Only the error path looks the producers up again.
  [[noreturn]] void throw_cycle(const std::map<std::string, const Node*>& producers,
                                const std::vector<size_t>& pending) {
    const auto unordered = [&](const Node* n) { return pending[n - g_.nodes.data()] > 0; };
    const Node* start = nullptr;
    for (const Node& n : g_.nodes) start = (!start && unordered(&n)) ? &n : start;
    std::vector<const Node*> path{start};
    std::map<const Node*, size_t> position{{start, 0}};
    for (;;) {
      const Node* next = nullptr;
      for (const std::string& in : path.back()->inputs) {
        auto it = producers.find(resolve_alias(g_, in));
        if (!next && it != producers.end() && unordered(it->second)) next = it->second;
      }
      if (auto seen = position.find(next); seen != position.end()) {
        std::string chain;
        for (size_t i = seen->second; i < path.size(); ++i) chain += path[i]->name + " <- ";
        throw GraphError(next->loc, "cycle in the graph: " + chain + next->name +
                                        " (each node reads the one after it)");
      }
      position.emplace(next, path.size());
      path.push_back(next);
    }
  }

  // Marks what the outputs and loss terms read, with an explicit stack: a 200,000-node chain
  // would overflow the call stack of a recursive walk.
  std::set<const Node*> live_nodes(const std::map<std::string, const Node*>& producers) {
    std::vector<std::string> pending;
    for (const GraphOutput& o : g_.outputs) pending.push_back(resolve_alias(g_, o.value));
    for (const LossTerm& t : g_.objective.terms) pending.push_back(resolve_alias(g_, t.input));
    std::set<const Node*> live;
    while (!pending.empty()) {
      const std::string name = std::move(pending.back());
      pending.pop_back();
      auto it = producers.find(name);
      if (it == producers.end() || !live.insert(it->second).second) continue;
      for (const std::string& in : it->second->inputs) pending.push_back(resolve_alias(g_, in));
    }
    return live;
  }

  // Refused here, at `engine check`, rather than when the arena is allocated.
  void check_tensor_size(const Shape& shape, const SourceLoc& loc, const std::string& what) const {
    const int64_t limit = g_.limits.max_tensor_elements;
    int64_t elements = 0;
    try {
      elements = shape_numel(shape);
    } catch (const OpError& e) {
      throw GraphError(loc, what + " " + shape_str(shape) + ": " + e.what());
    }
    if (elements > limit)
      throw GraphError(loc, what + " " + shape_str(shape) + " has " + std::to_string(elements) +
                                " elements, more than limits.max_tensor_elements = " +
                                std::to_string(limit) + " (raise it with --set)");
  }

  void add_step(const Node& n) {
    Step step;
    step.node = &n;
    std::vector<Shape> in_shapes;
    for (const std::string& in : n.inputs) {
      step.inputs.push_back(lookup(in, n.loc, &n));
      in_shapes.push_back(p_.values[step.inputs.back()].shape);
    }
    Inferred inferred;
    try {
      step.op = op_schema(n.id).create(n.attrs);
      inferred = step.op->infer(in_shapes);
    } catch (const OpError& e) {
      std::string shapes;
      for (size_t i = 0; i < in_shapes.size(); ++i)
        shapes += (i ? ", " : "") + n.inputs[i] + " " + shape_str(in_shapes[i]);
      throw GraphError(
          n.loc, "op '" + n.op + "' node '" + n.name + "' (inputs " + shapes + "): " + e.what());
    }
    const std::string what = "op '" + n.op + "' node '" + n.name + "'";
    check_tensor_size(inferred.outputs.at(0), n.loc, what + " output");
    for (const ParamSpec& spec : inferred.params)
      check_tensor_size(spec.shape, n.loc, what + " parameter '" + spec.name + "'");
    choose_variant(step, p_.backend, n.attrs, in_shapes);
    const int step_index = static_cast<int>(p_.steps.size());
    for (int v : step.inputs) p_.values[v].consumers.push_back(step_index);
    step.output = static_cast<int>(p_.values.size());
    p_.value_index[n.name] = step.output;
    p_.values.push_back({n.name, inferred.outputs.at(0), ValueKind::kActivation, step_index, {}});
    for (const ParamSpec& spec : inferred.params) {
      step.params.push_back(static_cast<int>(p_.params.size()));
      p_.params.push_back({n.name + "." + spec.name, spec});
    }
    step.macs_per_sample = inferred.macs_per_sample;
    p_.steps.push_back(std::move(step));
  }

  // bf16 is an inference plan between blocked oneDNN variants on a CPU that runs it natively;
  // anything else would silently compute f32 or run slower than f32.
  void check_bf16() const {
    const std::string what = "precision bf16 for graph '" + g_.name + "': ";
    if (!options_.fuse)
      throw std::invalid_argument(what +
                                  "bf16 is for inference only (a fused eval program); training "
                                  "and unfused programs run in fp32");
    if (p_.backend != Backend::kOnednn || !options_.blocked_layouts)
      throw std::invalid_argument(what + "needs the onednn backend with blocked layouts");
    const std::string reason = onednn_bf16_unsupported_reason();
    if (!reason.empty()) throw std::runtime_error(what + reason);
  }

  void check_objective() {
    for (size_t i = 0; i < g_.objective.terms.size(); ++i) {
      const LossTerm& t = g_.objective.terms[i];
      const SourceLoc& loc = g_.objective_locs[i];
      const ValueInfo& input = p_.values[lookup(t.input, loc)];
      const ValueInfo& target = p_.values[lookup(t.target, loc)];
      if (target.kind != ValueKind::kTarget)
        throw GraphError(loc, "objective target '" + t.target +
                                  "' must be one of [graph] targets, not a computed value");
      if (shape_numel(input.shape) != shape_numel(target.shape))
        throw GraphError(loc, "objective term compares '" + t.input + "' " +
                                  shape_str(input.shape) + " with '" + t.target + "' " +
                                  shape_str(target.shape) + ": sizes differ");
    }
  }

  const Graph& g_;
  CompileOptions options_;
  Program p_;
};

}  // namespace

// The reference op has validated the node; a variant replaces it only where it says it can.
void choose_variant(Step& step, Backend backend, const Attrs& attrs,
                    std::span<const Shape> in_shapes) {
  if (backend != Backend::kOnednn) return;
  const OpVariant* variant = find_onednn_variant(step.node->op);
  if (!variant) {
    step.dispatch_note = "onednn: no variant of " + step.node->op;
    return;
  }
  const std::string reason = variant->supports(attrs, in_shapes);
  if (!reason.empty()) {
    step.dispatch_note = "onednn: " + reason;
    return;
  }
  step.op = variant->create(attrs);
  step.impl = "onednn";
  step.layouts = variant->layouts;
  step.bf16 = variant->bf16 && !(variant->prefers_f32 && variant->prefers_f32(attrs, in_shapes));
}

int Program::value(const std::string& name) const {
  auto it = value_index.find(resolve_alias(*graph, name));
  if (it == value_index.end()) throw std::out_of_range("no value named '" + name + "'");
  return it->second;
}

int64_t Program::trainable_param_count() const {
  int64_t n = 0;
  for (const ParamInfo& p : params) n += p.spec.trainable ? shape_numel(p.spec.shape) : 0;
  return n;
}

int64_t Program::state_param_count() const {
  int64_t n = 0;
  for (const ParamInfo& p : params) n += p.spec.trainable ? 0 : shape_numel(p.spec.shape);
  return n;
}

int64_t Program::macs_per_sample() const {
  int64_t n = 0;
  for (const Step& s : steps) n += s.macs_per_sample;
  return n;
}

Program compile(std::shared_ptr<const Graph> graph, int64_t batch, Backend backend,
                const CompileOptions& options) {
  return Compiler(std::move(graph), batch, backend, options).run();
}

const char* precision_name(Precision precision) {
  return precision == Precision::kBf16 ? "bf16" : "fp32";
}

Precision parse_precision(const std::string& name) {
  if (name == "fp32") return Precision::kFp32;
  if (name == "bf16") return Precision::kBf16;
  throw std::invalid_argument("unknown precision '" + name + "' (fp32 or bf16)");
}

const char* backend_name(Backend backend) {
  return backend == Backend::kOnednn ? "onednn" : "reference";
}

Backend parse_backend(const std::string& name) {
  if (name == "reference") return Backend::kReference;
  if (name == "onednn") return Backend::kOnednn;
  throw std::invalid_argument("unknown backend '" + name + "' (reference or onednn)");
}

}  // namespace emt
