#include "engine/onnx/importer.h"

#include <cstdlib>

#include "engine/onnx/op_rules.h"
#include "engine/onnx/parse_cost.h"

namespace emt::onnx_import {
namespace {

// A declared ONNX shape agrees with ours on every fixed dimension.
bool agrees(const onnx::TypeProto& type, const Shape& shape) {
  if (!type.has_tensor_type() || !type.tensor_type().has_shape()) return true;
  const auto& s = type.tensor_type().shape();
  if (s.dim_size() != static_cast<int>(shape.size())) return false;
  for (int i = 0; i < s.dim_size(); ++i)
    if (s.dim(i).has_dim_value() && shape[static_cast<size_t>(i)] != kSymbolic &&
        s.dim(i).dim_value() != shape[static_cast<size_t>(i)])
      return false;
  return true;
}

std::string declared_str(const onnx::TypeProto& type) {
  std::string s = "[";
  const auto& shape = type.tensor_type().shape();
  for (int i = 0; i < shape.dim_size(); ++i) {
    const auto& d = shape.dim(i);
    s += (i ? ", " : "") + (d.has_dim_value()   ? std::to_string(d.dim_value())
                            : d.has_dim_param() ? d.dim_param()
                                                : "?");
  }
  return s + "]";
}

Shape engine_shape(const Value& v) { return v.pooled ? Shape{v.shape[0], v.shape[1]} : v.shape; }

}  // namespace

OnnxImport Importer::run() {
  opset_ = default_opset(model_, opt_.source);
  if (graph_.node_size() == 0) fail_format("the graph has no nodes");
  if (graph_.output_size() == 0) fail_format("the graph has no outputs");
  if (graph_.sparse_initializer_size() > 0)
    fail_unsupported("sparse initializers ('" +
                     printable(graph_.sparse_initializer(0).values().name()) +
                     "') are not supported");
  read_initializers();
  bind_constant_inputs();
  index_nodes();
  read_inputs();
  // Constant nodes have no inputs: defining them first lets a fusion look at a constant that a
  // later Constant node defines (MatMul + Add whose bias is a Constant after the MatMul).
  for (int i = 0; i < graph_.node_size(); ++i)
    if (graph_.node(i).op_type() == "Constant" && default_domain(graph_.node(i).domain())) {
      begin_node(i);
      check_node();
      import_constant();
    }
  for (int i = 0; i < graph_.node_size(); ++i) {
    if (folded_.count(i) ||
        (graph_.node(i).op_type() == "Constant" && default_domain(graph_.node(i).domain())))
      continue;
    begin_node(i);
    check_node();
    (this->*rule().import)();
  }
  node_ = nullptr;
  check_declared_shapes();
  return finish();
}

void Importer::read_initializers() {
  for (const onnx::TensorProto& t : graph_.initializer()) {
    if (t.name().empty()) fail_format("an initializer has no name");
    if (constants_.count(t.name()))
      fail_format("the initializer '" + printable(t.name()) + "' is defined twice");
    check_tensor(t, "initializer '" + printable(t.name()) + "'");
    constants_[t.name()] = &t;
  }
}

void Importer::bind_constant_inputs() {
  std::set<std::string> inputs;
  for (const auto& in : graph_.input()) inputs.insert(in.name());
  for (const auto& [name, bytes] : opt_.constant_inputs) {
    if (!inputs.count(name))
      throw std::invalid_argument(opt_.source + ": constant_inputs binds '" + name +
                                  "', which is not a graph input");
    onnx::TensorProto& t = owned_.emplace_back();
    check_parse_cost(bytes, *onnx::TensorProto::descriptor(), opt_.source);
    if (!t.ParseFromString(bytes))
      throw OnnxFormatError(opt_.source + ": the tensor bound to input '" + name +
                            "' does not parse as an onnx.TensorProto");
    check_tensor(t, "the tensor bound to input '" + printable(name) + "'");
    constants_[name] = &t;  // replaces an initializer of the same name, as a feed would
  }
}

void Importer::index_nodes() {
  for (int i = 0; i < graph_.node_size(); ++i) {
    const onnx::NodeProto& n = graph_.node(i);
    for (const std::string& in : n.input())
      if (!in.empty()) consumers_[in].push_back(i);
    for (const std::string& out : n.output()) {
      if (out.empty()) continue;
      if (producer_.count(out) || constants_.count(out)) {
        begin_node(i);
        fail_format("defines '" + printable(out) + "', which is already defined");
      }
      producer_[out] = i;
    }
  }
  for (const auto& out : graph_.output()) graph_outputs_.insert(out.name());
}

// The first node reading `name`, for messages about a graph input.
void Importer::blame_first_reader(const std::string& name) {
  auto it = consumers_.find(name);
  if (it != consumers_.end() && !it->second.empty()) begin_node(it->second.front());
}

void Importer::read_inputs() {
  std::optional<int64_t> batch;
  for (const onnx::ValueInfoProto& in : graph_.input()) {
    if (constants_.count(in.name())) continue;  // an initializer listed as input (IR < 4)
    const std::string name = printable(in.name());
    if (in.name().empty()) fail_format("a graph input has no name");
    if (producer_.count(in.name())) {
      begin_node(producer_.at(in.name()));
      fail_format("defines '" + name + "', which is a graph input");
    }
    if (values_.count(in.name())) fail_format("the graph input '" + name + "' is listed twice");
    blame_first_reader(in.name());
    if (!in.type().has_tensor_type())
      fail_unsupported("graph input '" + name + "' is not a tensor");
    const auto& tt = in.type().tensor_type();
    if (tt.elem_type() != onnx::TensorProto::FLOAT)
      fail_unsupported("graph input '" + name + "' is " + type_name(tt.elem_type()) +
                       "; the engine computes in float32 only");
    if (!tt.has_shape())
      fail_unsupported("graph input '" + name + "' has no shape; the engine needs fixed C, H, W");
    Shape shape;
    for (int d = 0; d < tt.shape().dim_size(); ++d) {
      const auto& dim = tt.shape().dim(d);
      if (dim.has_dim_value() && dim.dim_value() > 0) {
        shape.push_back(dim.dim_value());
      } else if (dim.has_dim_value()) {
        fail_unsupported("graph input '" + name + "' has the empty dimension " +
                         std::to_string(dim.dim_value()) + " on axis " + std::to_string(d));
      } else if (d == 0) {
        shape.push_back(kSymbolic);
      } else {
        fail_unsupported("graph input '" + name + "' has " +
                         (dim.has_dim_param()
                              ? "the symbolic dimension '" + printable(dim.dim_param()) + "'"
                              : std::string("an unknown or empty dimension")) +
                         " on axis " + std::to_string(d) +
                         "; only the batch axis (0) may vary, the others must be fixed");
      }
    }
    if (shape.size() < 2)
      fail_unsupported("graph input '" + name + "' is " + std::to_string(shape.size()) + "-D " +
                       dims_str(shape) + "; the engine needs a batch axis and at least one more");
    if (shape[0] != kSymbolic) {
      if (batch && *batch != shape[0])
        fail_unsupported("graph input '" + name + "' has batch " + std::to_string(shape[0]) +
                         ", another input " + std::to_string(*batch) +
                         "; the engine runs every input with one batch size");
      batch = shape[0];
    }
    node_ = nullptr;
    std::string engine = in.name();
    if (!valid_engine_name(engine)) {
      engine = unique(sanitise(in.name()).empty() ? "input" : sanitise(in.name()));
      notes_.push_back("graph input '" + name + "' is called '" + engine +
                       "' in the engine ('.' and a leading '@' are not allowed in names)");
    } else {
      if (used_.count(engine)) fail_format("the graph input name '" + name + "' is used twice");
      used_.insert(engine);
    }
    values_[in.name()] = {engine, shape, false, -1};
    inputs_.push_back(in.name());
  }
  node_ = nullptr;
  if (inputs_.empty()) fail_unsupported("the graph has no runtime input");
  batch_ = batch.value_or(1);
}

void Importer::check_declared(const onnx::ValueInfoProto& info, const char* kind) {
  auto it = values_.find(info.name());
  if (it == values_.end()) return;
  const Value& v = it->second;
  if (v.producer >= 0) begin_node(v.producer);
  if (info.type().has_tensor_type() && info.type().tensor_type().elem_type() != 0 &&
      info.type().tensor_type().elem_type() != onnx::TensorProto::FLOAT)
    fail_unsupported(std::string(kind) + " '" + printable(info.name()) + "' is " +
                     type_name(info.type().tensor_type().elem_type()) +
                     "; the engine computes in float32 only");
  if (!agrees(info.type(), v.shape))
    fail_format(std::string(kind) + " '" + printable(info.name()) + "' is declared " +
                declared_str(info.type()) + " but computes " + dims_str(v.shape));
  node_ = nullptr;
}

void Importer::check_declared_shapes() {
  for (const onnx::ValueInfoProto& out : graph_.output()) {
    if (constants_.count(out.name()))
      fail_unsupported("graph output '" + printable(out.name()) +
                       "' is a constant; the engine's outputs are computed values");
    if (!values_.count(out.name()))
      fail_format("graph output '" + printable(out.name()) + "' is not computed by any node");
    check_declared(out, "graph output");
  }
  for (const onnx::ValueInfoProto& info : graph_.value_info()) check_declared(info, "value");
}

std::string Importer::graph_name() const {
  if (!opt_.graph_name.empty()) return opt_.graph_name;
  const std::string s = sanitise(graph_.name());
  return s.empty() ? "imported" : s;
}

bool Importer::batch_fixed() const {
  for (const std::string& in : inputs_)
    if (values_.at(in).shape[0] != kSymbolic) return true;
  return false;
}

GraphFileContent Importer::graph_file() const {
  GraphFileContent c{&model_, opt_.source, opset_, graph_name(), std::nullopt,
                     {},      {},          nodes_, notes_};
  if (batch_fixed()) c.fixed_batch = batch_;
  for (const std::string& in : inputs_)
    c.inputs.emplace_back(values_.at(in).engine, values_.at(in).shape);
  for (const auto& out : graph_.output())
    c.outputs.emplace_back(out.name(), values_.at(out.name()).engine);
  return c;
}

OnnxImport Importer::finish() {
  OnnxImport r;
  for (const std::string& in : inputs_) {
    const Value& v = values_.at(in);
    r.inputs.push_back({in, v.engine, v.shape, v.shape});
  }
  for (const auto& out : graph_.output()) {
    const Value& v = values_.at(out.name());
    r.outputs.push_back({out.name(), v.engine, v.shape, engine_shape(v)});
    if (v.pooled)
      notes_.push_back("graph output '" + printable(out.name()) + "' is [N, C] in the engine, " +
                       dims_str(v.shape) + " in ONNX (the same values)");
  }
  r.toml = render_graph_file(graph_file());
  r.toml_name = opt_.source + " (imported graph)";
  r.notes = notes_;
  for (const auto& n : graph_.node()) r.onnx_ops.push_back(n.op_type());
  r.weights.tensors = std::move(weights_);
  r.weights.metadata["graph"] = graph_name();
  r.weights.metadata["source"] = "ONNX import of " + opt_.source;
  for (const auto& p : model_.metadata_props())
    if (p.key() == "norm_mean" || p.key() == "norm_std") {
      char* end = nullptr;
      std::strtod(p.value().c_str(), &end);
      if (!p.value().empty() && end && *end == '\0') r.weights.metadata[p.key()] = p.value();
    }
  if (inputs_.size() == 1) {
    const Shape& s = values_.at(inputs_[0]).shape;
    if (s.size() == 4 && s[2] == s[3]) r.weights.metadata["input_size"] = std::to_string(s[2]);
  }
  return r;
}

}  // namespace emt::onnx_import
