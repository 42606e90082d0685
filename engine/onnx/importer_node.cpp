#include <onnx/defs/schema.h>

#include <algorithm>
#include <cctype>

#include "engine/onnx/importer.h"
#include "engine/onnx/op_rules.h"

namespace emt::onnx_import {

void Importer::begin_node(int index) {
  index_ = index;
  node_ = &graph_.node(index);
}

const OpRule& Importer::rule() const { return *find_rule(node_->op_type()); }

// Domain, op, version and attributes; every input defined.
void Importer::check_node() {
  const onnx::NodeProto& n = node();
  if (!default_domain(n.domain()))
    fail_unsupported("op '" + printable(n.op_type()) + "' of domain '" + printable(n.domain()) +
                     "' is not supported (only the default ONNX domain)");
  const OpRule* r = find_rule(n.op_type());
  if (!r)
    fail_unsupported("op '" + printable(n.op_type()) +
                     "' has no engine equivalent (supported: " + supported_ops() + ")");
  const onnx::OpSchema* schema =
      onnx::OpSchemaRegistry::Schema(n.op_type(), static_cast<int>(opset_), "");
  if (!schema)
    fail_format("op '" + n.op_type() + "' does not exist in opset " + std::to_string(opset_) +
                " (wrong opset?)");
  version_ = schema->since_version();
  if (version_ < r->min_version)
    fail_format("opset " + std::to_string(opset_) + " gives " + n.op_type() + " version " +
                std::to_string(version_) + ", too old: the importer reads version " +
                std::to_string(r->min_version) + " and later (opset " +
                std::to_string(r->min_version) + "+)");
  for (const onnx::AttributeProto& a : n.attribute())
    if (std::find(r->attrs.begin(), r->attrs.end(), a.name()) == r->attrs.end())
      fail_unsupported("attribute '" + printable(a.name()) + "' is not supported");
  for (const std::string& in : n.input()) {
    if (in.empty() || values_.count(in) || constants_.count(in)) continue;
    auto p = producer_.find(in);
    if (p != producer_.end() && p->second > index_)
      fail_format("reads '" + printable(in) + "', which node " + std::to_string(p->second) +
                  " computes later: the nodes are not in topological order");
    // An earlier node's output that is neither a value nor a constant is the inner value of
    // a fusion (MatMul + Add, GlobalAveragePool + Flatten) whose second node this is.
    if (p != producer_.end()) continue;
    fail_format("reads '" + printable(in) +
                "', which no initializer, graph input or earlier node defines (a missing "
                "initializer?)");
  }
}

const onnx::AttributeProto* Importer::attr(const std::string& name) const {
  for (const onnx::AttributeProto& a : node().attribute())
    if (a.name() == name) return &a;
  return nullptr;
}

int64_t Importer::attr_int(const std::string& name, int64_t fallback) const {
  const onnx::AttributeProto* a = attr(name);
  if (!a) return fallback;
  if (a->type() != onnx::AttributeProto::INT && !(a->type() == 0 && a->has_i()))
    fail_format("attribute '" + name + "' must be an integer");
  return a->i();
}

float Importer::attr_float(const std::string& name, float fallback) const {
  const onnx::AttributeProto* a = attr(name);
  if (!a) return fallback;
  if (a->type() != onnx::AttributeProto::FLOAT && !(a->type() == 0 && a->has_f()))
    fail_format("attribute '" + name + "' must be a float");
  return a->f();
}

std::optional<Shape> Importer::attr_ints(const std::string& name) const {
  const onnx::AttributeProto* a = attr(name);
  if (!a) return std::nullopt;
  if (a->type() != onnx::AttributeProto::INTS && !(a->type() == 0 && a->ints_size() > 0))
    fail_format("attribute '" + name + "' must be a list of integers");
  return Shape(a->ints().begin(), a->ints().end());
}

std::string Importer::attr_string(const std::string& name, const std::string& fallback) const {
  const onnx::AttributeProto* a = attr(name);
  if (!a) return fallback;
  if (a->type() != onnx::AttributeProto::STRING && !(a->type() == 0 && a->has_s()))
    fail_format("attribute '" + name + "' must be a string");
  return a->s();
}

// Input `i` of the node, or "" when absent.
std::string Importer::input(int i) const {
  return i < node().input_size() ? node().input(i) : std::string();
}

const Value& Importer::runtime(int i, const std::string& role, bool allow_pooled) const {
  const std::string& name = input(i);
  if (name.empty()) fail_format("has no " + role + " (input " + std::to_string(i) + ")");
  auto it = values_.find(name);
  if (it == values_.end())
    fail_unsupported(role + " '" + printable(name) +
                     "' is a constant; the engine has no op taking a constant there");
  if (it->second.pooled && !allow_pooled)
    fail_unsupported(role + " '" + printable(name) +
                     "' is a GlobalAveragePool output [N, C, 1, 1], which the engine holds as "
                     "[N, C]: only a Flatten or Reshape to [N, C], elementwise ops and graph "
                     "outputs may read it");
  return it->second;
}

const onnx::TensorProto& Importer::constant(int i, const std::string& role) const {
  const std::string& name = input(i);
  if (name.empty()) fail_format("has no " + role + " (input " + std::to_string(i) + ")");
  auto it = constants_.find(name);
  if (it != constants_.end()) return *it->second;
  const Value& v = values_.at(name);
  if (v.producer < 0)
    fail_unsupported(role + " '" + printable(name) +
                     "' is a runtime graph input; the engine needs weights as initializers (a "
                     "caller of the library can bind a value: OnnxImportOptions::constant_inputs)");
  fail_unsupported(role + " '" + printable(name) + "' is computed at run time by node " +
                   std::to_string(v.producer) + "; the engine needs it as an initializer");
}

// Only outputs [0, used) may be consumed or exported.
void Importer::require_outputs(int used, const std::string& why) const {
  for (int o = used; o < node().output_size(); ++o)
    if (!node().output(o).empty())
      fail_unsupported("output " + std::to_string(o) + " ('" + printable(node().output(o)) +
                       "') is not supported: " + why);
}

void Importer::define(int output, Value v) {
  if (output >= node().output_size() || node().output(output).empty())
    fail_format("has no output " + std::to_string(output));
  v.producer = index_;
  values_[node().output(output)] = std::move(v);
}

std::string Importer::comment_for(const std::vector<int>& nodes) const {
  std::string s;
  for (int i : nodes) {
    const onnx::NodeProto& n = graph_.node(i);
    s += (s.empty() ? "" : " + ") + std::to_string(i) + " " + printable(n.op_type());
    if (!n.name().empty()) s += " '" + printable(n.name()) + "'";
  }
  return s;
}

std::string Importer::unique(const std::string& base) {
  std::string candidate = base;
  for (int i = 2; used_.count(candidate); ++i) candidate = base + "_" + std::to_string(i);
  used_.insert(candidate);
  return candidate;
}

// The engine name for what node `i` computes.
std::string Importer::engine_name(int i, const std::string& engine_op) {
  const onnx::NodeProto& n = graph_.node(i);
  std::string base = sanitise(n.name());
  if (base.empty() && n.output_size() > 0) base = sanitise(n.output(0));
  if (base.empty()) base = std::to_string(i);
  if (std::isdigit(static_cast<unsigned char>(base[0]))) base = engine_op + "_" + base;
  return unique(base);
}

std::string Importer::emit(const std::string& op, const std::string& name,
                           std::vector<std::string> inputs,
                           std::vector<std::pair<std::string, std::string>> attrs,
                           const std::vector<int>& onnx_nodes) {
  nodes_.push_back({op, name, std::move(inputs), std::move(attrs), comment_for(onnx_nodes)});
  return name;
}

void Importer::add_weight(const std::string& node, const std::string& param, Shape dims,
                          std::vector<float> data) {
  weights_.push_back({node + "." + param, std::move(dims), std::move(data)});
}

// The only reader of this node's output 0, when the output is not also a graph output.
std::optional<int> Importer::sole_consumer() const {
  const std::string& out = node().output_size() ? node().output(0) : std::string();
  if (out.empty() || graph_outputs_.count(out)) return std::nullopt;
  auto it = consumers_.find(out);
  if (it == consumers_.end() || it->second.size() != 1) return std::nullopt;
  // A node reading the value twice (Add(y, y)) lists it twice.
  return it->second.front();
}

// The value of an identity node is its input's.
void Importer::alias(const std::string& onnx_input, const std::string& why) {
  auto c = constants_.find(onnx_input);
  if (c != constants_.end()) {
    constants_[node().output(0)] = c->second;
    return;
  }
  Value v = values_.at(onnx_input);
  define(0, v);
  notes_.push_back(comment_for({index_}) + " is the identity (" + why + "): folded away");
}

void Importer::alias_as(const Value& x, const Shape& shape, const std::string& why) {
  Value v = x;
  v.shape = shape;
  v.pooled = false;
  define(0, v);
  notes_.push_back(comment_for({index_}) + " is folded away (" + why + ")");
}

}  // namespace emt::onnx_import
