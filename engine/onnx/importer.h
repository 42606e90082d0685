// ONNX import, the importer: walks one model's nodes in order and turns each into engine nodes
// (graph_text.h writes them), weights and constants. Its methods live by concern: the model's
// inputs, outputs and result (importer.cpp), the current node's attributes and inputs
// (importer_node.cpp), and one file per op family (import_conv.cpp, import_elementwise.cpp,
// import_dense.cpp, import_shape.cpp), which op_rules() dispatches to. Internal to engine/onnx.
#pragma once

#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "engine/onnx/graph_text.h"
#include "engine/onnx/model_reader.h"

namespace emt::onnx_import {

struct OpRule;

// An ONNX value the engine computes.
struct Value {
  std::string engine;   // the engine value holding it (a node or graph input name)
  Shape shape;          // ONNX shape, batch axis first (kSymbolic when not fixed)
  bool pooled = false;  // ONNX [N, C, 1, 1] held by the engine as [N, C]
  int producer = -1;    // ONNX node index; -1 for graph inputs
};

class Importer : public ModelReader {
 public:
  Importer(const onnx::ModelProto& model, const OnnxImportOptions& opt)
      : ModelReader(opt.source), model_(model), graph_(model.graph()), opt_(opt) {}

  OnnxImport run();

  // One per ONNX op, for the current node (op_rules() names them).
  void import_conv();
  void import_conv_transpose();
  void import_batch_norm();
  void import_relu();
  void import_sigmoid();
  void import_add();
  void import_clip();
  void import_dropout();
  void import_identity();
  void import_gemm();
  void import_matmul();
  void import_global_avg_pool();
  void import_reshape();  // Flatten and Reshape
  void import_constant();
  void import_transpose();

 private:
  // --- the model (importer.cpp) ---------------------------------------------------------------
  void read_initializers();
  void bind_constant_inputs();
  void index_nodes();
  void blame_first_reader(const std::string& name);
  void read_inputs();
  void check_declared(const onnx::ValueInfoProto& info, const char* kind);
  void check_declared_shapes();
  std::string graph_name() const;
  bool batch_fixed() const;
  GraphFileContent graph_file() const;
  OnnxImport finish();

  // --- the current node (importer_node.cpp) ---------------------------------------------------
  void begin_node(int index);
  const onnx::NodeProto& node() const { return *node_; }
  const OpRule& rule() const;
  void check_node();
  const onnx::AttributeProto* attr(const std::string& name) const;
  int64_t attr_int(const std::string& name, int64_t fallback) const;
  float attr_float(const std::string& name, float fallback) const;
  std::optional<Shape> attr_ints(const std::string& name) const;
  std::string attr_string(const std::string& name, const std::string& fallback) const;
  std::string input(int i) const;
  bool has_input(int i) const { return !input(i).empty(); }
  const Value& runtime(int i, const std::string& role, bool allow_pooled = false) const;
  const onnx::TensorProto& constant(int i, const std::string& role) const;
  void require_outputs(int used, const std::string& why) const;
  void define(int output, Value v);
  std::string comment_for(const std::vector<int>& nodes) const;
  std::string unique(const std::string& base);
  std::string engine_name(int i, const std::string& engine_op);
  std::string emit(const std::string& op, const std::string& name, std::vector<std::string> inputs,
                   std::vector<std::pair<std::string, std::string>> attrs,
                   const std::vector<int>& onnx_nodes);
  void add_weight(const std::string& node, const std::string& param, Shape dims,
                  std::vector<float> data);
  std::optional<int> sole_consumer() const;
  void alias(const std::string& onnx_input, const std::string& why);
  void alias_as(const Value& x, const Shape& shape, const std::string& why);

  // --- op families ----------------------------------------------------------------------------
  struct ConvAttrs {
    int64_t kernel = 1, stride = 1, pad = 0;
  };
  const Value& spatial_input(const std::string& what) const;
  ConvAttrs conv_attrs() const;
  int64_t conv_kernel(const Shape& weight) const;
  std::optional<std::vector<float>> optional_bias(int64_t cout);
  void emit_conv(const std::string& op, const std::string& kind, const Value& x,
                 const std::vector<std::pair<std::string, std::string>>& attrs,
                 const onnx::TensorProto& w, std::optional<std::vector<float>>& bias,
                 const Shape& out_shape);
  void import_unary(const std::string& op);
  std::vector<float> row_bias(const onnx::TensorProto& t, int64_t outputs, int64_t batch,
                              const std::string& what) const;
  void emit_dense(const Value& a, int64_t m, int64_t k, std::vector<float> weight,
                  std::optional<std::vector<float>> bias, const std::vector<int>& onnx_nodes,
                  int output_of_last);
  bool flattens_to_2d(int j, const Shape& in);

  const onnx::ModelProto& model_;
  const onnx::GraphProto& graph_;
  const OnnxImportOptions& opt_;
  int64_t opset_ = 0;
  int64_t batch_ = 1;
  int version_ = 0;  // the current node's op version

  std::map<std::string, const onnx::TensorProto*> constants_;
  std::deque<onnx::TensorProto> owned_;  // bound inputs, Constant values, folded constants
  std::map<std::string, Value> values_;
  std::vector<std::string> inputs_;  // runtime graph inputs, in order
  std::map<std::string, int> producer_;
  std::map<std::string, std::vector<int>> consumers_;
  std::set<std::string> graph_outputs_;
  std::set<int> folded_;
  std::set<std::string> used_;

  std::vector<EngineNode> nodes_;
  std::vector<NamedTensor> weights_;
  std::vector<std::string> notes_;
};

}  // namespace emt::onnx_import
