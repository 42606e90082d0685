#include "engine/onnx/export.h"

// The onnx CMake targets define these; defining them here as well keeps this file compiling in a
// target that only finds the headers.
#ifndef ONNX_NAMESPACE
#define ONNX_NAMESPACE onnx
#endif
#ifndef ONNX_ML
#define ONNX_ML 1
#endif

#include <onnx/checker.h>
#include <onnx/defs/schema.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <bit>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>
#include <utility>
#include <vector>

#include "engine/compiler/program.h"
#include "engine/io/atomic_file.h"
#include "ops/conv2d/conv2d.h"

namespace emt {
namespace {

static_assert(std::endian::native == std::endian::little,
              "ONNX raw_data is little-endian; this exporter copies floats as they are in memory");

constexpr int64_t kOpset = 13;
constexpr const char* kBatchDim = "N";

std::string number_str(double v) {
  std::ostringstream s;
  s.precision(17);
  s << v;
  return s.str();
}

// Builds the ModelProto from the model's graph compiled for batch 1 (shapes are recorded with
// the batch axis replaced by "N").
class Exporter {
 public:
  Exporter(const Model& model, const OnnxExportOptions& opt)
      : model_(model),
        opt_(opt),
        program_(compile(std::make_shared<const Graph>(model.graph()), 1)),
        names_(program_.values.size()),
        source_(program_.values.size()) {}

  onnx::ModelProto run() {
    resolve_dropouts();
    assign_names();
    for (const Step& step : program_.steps) emit(step);
    for (const auto& [name, value] : exports_) {
      if (names_[value] != name) add_node("Identity", name, {names_[value]}, {name});
      set_type(graph_.add_output(), name, program_.values[value].shape);
    }
    for (const GraphInput& in : model_.graph().inputs)
      set_type(graph_.add_input(), in.name, program_.values[program_.value(in.name)].shape);

    onnx::ModelProto proto;
    proto.set_ir_version(onnx::IR_VERSION);
    proto.set_producer_name("emtnet");
    proto.set_model_version(1);
    proto.set_doc_string("EMT-Net engine export of graph '" + model_.graph().name +
                         "' (inference: batch norm on running statistics, no dropout)");
    onnx::OperatorSetIdProto* opset = proto.add_opset_import();
    opset->set_domain("");
    opset->set_version(kOpset);
    add_metadata(proto);
    graph_.set_name(model_.graph().name);
    *proto.mutable_graph() = std::move(graph_);
    return proto;
  }

 private:
  // Dropout is the identity at inference: its output is its input's value.
  void resolve_dropouts() {
    for (size_t v = 0; v < source_.size(); ++v) source_[v] = static_cast<int>(v);
    for (const Step& step : program_.steps)
      if (step.node->id == OpId::dropout) source_[step.output] = source_[step.inputs.at(0)];
  }

  // Graph inputs and public outputs keep their names; every other value keeps its node's name
  // unless that is taken (then it gets a numeric suffix).
  void assign_names() {
    for (const ParamInfo& p : program_.params) reserve(p.name);
    for (const GraphInput& in : model_.graph().inputs) {
      reserve(in.name);
      names_[program_.value(in.name)] = in.name;
    }
    for (const GraphOutput& out : model_.graph().outputs) {
      const int value = program_.outputs.at(out.name);
      exports_.emplace_back(out.name, value);
      const int producer = program_.values[source_[value]].producer;
      if (opt_.include_logits && producer >= 0 &&
          program_.steps[producer].node->id == OpId::sigmoid && !is_public(out.name + "_logit"))
        exports_.emplace_back(out.name + "_logit", program_.steps[producer].inputs.at(0));
    }
    for (auto& [name, value] : exports_) {
      reserve(name);
      value = source_[value];
      // The producing node writes the public name directly unless the value is a graph input or
      // already exported under another name (then an Identity copies it).
      if (program_.values[value].producer >= 0 && names_[value].empty()) names_[value] = name;
    }
    for (size_t v = 0; v < names_.size(); ++v)
      if (names_[v].empty() && program_.values[v].kind == ValueKind::kActivation &&
          source_[v] == static_cast<int>(v))
        names_[v] = unique(program_.values[v].name);
    for (size_t v = 0; v < names_.size(); ++v) names_[v] = names_[source_[v]];
  }

  bool is_public(const std::string& name) const {
    for (const GraphOutput& out : model_.graph().outputs)
      if (out.name == name) return true;
    return false;
  }

  void reserve(const std::string& name) {
    if (!used_.insert(name).second)
      throw std::runtime_error("ONNX export of graph '" + model_.graph().name + "': the name '" +
                               name + "' is used twice among inputs, outputs and parameters");
  }

  std::string unique(const std::string& name) {
    std::string candidate = name;
    for (int i = 1; used_.count(candidate); ++i) candidate = name + "_" + std::to_string(i);
    used_.insert(candidate);
    return candidate;
  }

  void emit(const Step& step) {
    const Node& n = *step.node;
    const std::string& x = names_[step.inputs.at(0)];
    const std::string& y = names_[step.output];
    const Shape& in_shape = program_.values[step.inputs.at(0)].shape;
    std::vector<std::string> params;
    for (int p : step.params) params.push_back(add_initializer(program_.params[p].name));

    if (n.id == OpId::dropout)
      return;  // identity at inference; resolve_dropouts forwarded its name
    if (n.attrs.has("activation") && n.attrs.get_string("activation") != "none")
      throw GraphError(n.loc, "op '" + n.op + "' node '" + n.name + "': activation = \"" +
                                  n.attrs.get_string("activation") +
                                  "\" has no ONNX mapping here; write the relu as its own node");
    if (n.id == OpId::conv2d) {
      const int64_t k = n.attrs.get_int("kernel"), s = n.attrs.get_int("stride");
      // The op's own resolution (explicit, automatic or TF SAME, which is asymmetric) for this
      // node's input size; ONNX orders pads [top, left, bottom, right].
      const ConvPadding pad = conv2d_padding(n.attrs, in_shape.at(2), in_shape.at(3));
      const int64_t group =
          n.attrs.get_bool("depthwise") ? in_shape.at(1) : n.attrs.get_int("groups");
      onnx::NodeProto* node = add_node("Conv", n.name, concat({x}, params), {y});
      ints(node, "kernel_shape", {k, k});
      ints(node, "strides", {s, s});
      ints(node, "pads", {pad.top, pad.left, pad.bottom, pad.right});
      ints(node, "dilations", {1, 1});
      int_attr(node, "group", group);
    } else if (n.id == OpId::conv_transpose2d) {
      const int64_t k = n.attrs.get_int("kernel"), s = n.attrs.get_int("stride");
      const int64_t pad = n.attrs.get_int("pad") == -1 ? (k - 1) / 2 : n.attrs.get_int("pad");
      const int64_t out_pad = n.attrs.get_int("output_pad");
      onnx::NodeProto* node = add_node("ConvTranspose", n.name, concat({x}, params), {y});
      ints(node, "kernel_shape", {k, k});
      ints(node, "strides", {s, s});
      ints(node, "pads", {pad, pad, pad, pad});
      ints(node, "output_padding", {out_pad, out_pad});
      ints(node, "dilations", {1, 1});
      int_attr(node, "group", 1);
    } else if (n.id == OpId::batch_norm) {
      // Params in BatchNormOp order: gamma, beta, running_mean, running_var, as ONNX wants them.
      onnx::NodeProto* node = add_node("BatchNormalization", n.name, concat({x}, params), {y});
      float_attr(node, "epsilon", static_cast<float>(n.attrs.get_float("eps")));
      float_attr(node, "momentum", static_cast<float>(1.0 - n.attrs.get_float("momentum")));
    } else if (n.id == OpId::dense) {
      onnx::NodeProto* node = add_node("Gemm", n.name, concat({x}, params), {y});
      int_attr(node, "transB", 1);
    } else if (n.id == OpId::global_avg_pool) {
      const std::string pooled = unique(n.name + "/pool");
      add_node("GlobalAveragePool", n.name + "/pool", {x}, {pooled});
      set_type(graph_.add_value_info(), pooled, {in_shape.at(0), in_shape.at(1), 1, 1});
      int_attr(add_node("Flatten", n.name, {pooled}, {y}), "axis", 1);
    } else if (n.id == OpId::relu) {
      add_node("Relu", n.name, {x}, {y});
    } else if (n.id == OpId::relu6) {
      add_node("Clip", n.name, {x, scalar("clip_min", 0.0f), scalar("clip_max", 6.0f)}, {y});
    } else if (n.id == OpId::sigmoid) {
      add_node("Sigmoid", n.name, {x}, {y});
    } else if (n.id == OpId::add) {
      add_node("Add", n.name, {x, names_[step.inputs.at(1)]}, {y});
    } else {
      throw GraphError(
          n.loc, "ONNX export: op '" + n.op + "' (node '" + n.name + "') has no ONNX mapping");
    }
    if (!is_exported(y)) set_type(graph_.add_value_info(), y, program_.values[step.output].shape);
  }

  bool is_exported(const std::string& name) const {
    for (const auto& e : exports_)
      if (e.first == name) return true;
    return false;
  }

  static std::vector<std::string> concat(std::vector<std::string> a,
                                         const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  }

  onnx::NodeProto* add_node(const std::string& op, const std::string& name,
                            const std::vector<std::string>& inputs,
                            const std::vector<std::string>& outputs) {
    onnx::NodeProto* node = graph_.add_node();
    node->set_op_type(op);
    node->set_name(name);
    for (const std::string& in : inputs) node->add_input(in);
    for (const std::string& out : outputs) node->add_output(out);
    return node;
  }

  static void ints(onnx::NodeProto* node, const std::string& name,
                   const std::vector<int64_t>& values) {
    onnx::AttributeProto* a = node->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t v : values) a->add_ints(v);
  }

  static void int_attr(onnx::NodeProto* node, const std::string& name, int64_t value) {
    onnx::AttributeProto* a = node->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(value);
  }

  static void float_attr(onnx::NodeProto* node, const std::string& name, float value) {
    onnx::AttributeProto* a = node->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(value);
  }

  // A float tensor with the batch axis (dim 0) symbolic.
  static void set_type(onnx::ValueInfoProto* info, const std::string& name, const Shape& shape) {
    info->set_name(name);
    onnx::TypeProto_Tensor* t = info->mutable_type()->mutable_tensor_type();
    t->set_elem_type(onnx::TensorProto::FLOAT);
    onnx::TensorShapeProto* s = t->mutable_shape();
    for (size_t i = 0; i < shape.size(); ++i) {
      onnx::TensorShapeProto_Dimension* d = s->add_dim();
      if (i == 0)
        d->set_dim_param(kBatchDim);
      else
        d->set_dim_value(shape[i]);
    }
  }

  void add_tensor(const std::string& name, const Shape& shape, const float* data, int64_t count) {
    onnx::TensorProto* t = graph_.add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : shape) t->add_dims(d);
    t->set_raw_data(std::string(reinterpret_cast<const char*>(data),
                                static_cast<size_t>(count) * sizeof(float)));
  }

  // Weights and batch-norm statistics under their parameter names ("backbone.stem.conv.weight").
  std::string add_initializer(const std::string& name) {
    if (!initialized_.insert(name).second) return name;
    const ParamEntry& entry = model_.params().at(name);
    const int64_t count = shape_numel(entry.spec.shape);
    if (static_cast<int64_t>(entry.value.size()) != count)
      throw std::runtime_error("ONNX export: parameter '" + name + "' holds " +
                               std::to_string(entry.value.size()) + " values, its shape " +
                               shape_str(entry.spec.shape) + " needs " + std::to_string(count));
    add_tensor(name, entry.spec.shape, entry.value.data(), count);
    return name;
  }

  // A shared scalar constant (Clip's bounds are inputs since opset 11).
  std::string scalar(const std::string& key, float value) {
    auto it = scalars_.find(key);
    if (it != scalars_.end()) return it->second;
    const std::string name = unique(key);
    add_tensor(name, {}, &value, 1);
    return scalars_[key] = name;
  }

  void add_metadata(onnx::ModelProto& proto) const {
    const auto add = [&](const std::string& key, const std::string& value) {
      onnx::StringStringEntryProto* e = proto.add_metadata_props();
      e->set_key(key);
      e->set_value(value);
    };
    add("graph", model_.graph().name);
    std::string outputs;
    for (const auto& [name, value] : exports_)
      outputs += (outputs.empty() ? "" : ", ") + name + " = " + program_.values[value].name;
    add("outputs", outputs);
    if (opt_.config) {
      const double mean = opt_.config->get_float("data.norm_mean");
      const double sd = opt_.config->get_float("data.norm_std");
      add("norm_mean", number_str(mean));
      add("norm_std", number_str(sd));
      add("input_normalisation", "input = (pixel / 255 - " + number_str(mean) + ") / " +
                                     number_str(sd) + " on every channel");
    }
    for (const LossTerm& t : model_.graph().objective.terms) {
      if (t.kind != LossKind::kWeightedBce) continue;
      add("W_p", number_str(t.pos_weight));
      add("W_c", number_str(t.weight));
      break;
    }
  }

  const Model& model_;
  const OnnxExportOptions& opt_;
  Program program_;
  std::vector<std::string> names_;                    // per value: its ONNX name
  std::vector<int> source_;                           // per value: the value it equals
  std::vector<std::pair<std::string, int>> exports_;  // public name -> value
  std::set<std::string> used_;
  std::set<std::string> initialized_;
  std::map<std::string, std::string> scalars_;
  onnx::GraphProto graph_;
};

}  // namespace

std::string export_onnx_bytes(const Model& model, const OnnxExportOptions& opt) {
  onnx::ModelProto proto = Exporter(model, opt).run();
  const std::string what = "ONNX export of graph '" + model.graph().name + "'";
  try {
    onnx::checker::check_model(proto);
  } catch (const std::exception& e) {
    throw std::runtime_error(what + ": the ONNX checker rejects the model: " + e.what());
  }
  try {
    // Strict inference on a copy: every output and intermediate shape we declared must agree
    // with what ONNX derives from the op attributes, which catches a wrong pad or layout here.
    onnx::ModelProto inferred = proto;
    onnx::shape_inference::InferShapes(inferred, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(true, 1, false));
  } catch (const std::exception& e) {
    throw std::runtime_error(what +
                             ": ONNX shape inference disagrees with the engine: " + e.what());
  }
  std::string bytes;
  if (!proto.SerializeToString(&bytes)) throw std::runtime_error(what + ": serialisation failed");
  return bytes;
}

void export_onnx(const Model& model, const std::filesystem::path& out,
                 const OnnxExportOptions& opt) {
  write_file_atomic(out, export_onnx_bytes(model, opt));
}

}  // namespace emt
