// ONNX import's entry points (import.h): the model is read and converted by the Importer
// (importer.h), and the result checked by parsing, compiling and loading it here.
#include "engine/onnx/import.h"

#include <cstring>
#include <memory>
#include <optional>
#include <set>

#include "engine/compiler/program.h"
#include "engine/dsl/parser.h"
#include "engine/io/atomic_file.h"
#include "engine/onnx/importer.h"
#include "engine/onnx/op_rules.h"
#include "engine/onnx/parse_cost.h"
#include "engine/runtime/params.h"

namespace emt {

namespace fs = std::filesystem;
using namespace onnx_import;

namespace {

// The generated graph parses, compiles at the model's batch size, computes the expected output
// shapes, and takes the weights.
void check_result(const OnnxImport& r, const std::string& source) {
  const auto fail = [&](const std::string& what) -> void {
    throw OnnxFormatError(source + ": the imported graph does not check: " + what);
  };
  int64_t batch = 1;
  for (const OnnxImportIo& in : r.inputs)
    if (in.onnx_shape[0] != kSymbolic) batch = in.onnx_shape[0];
  try {
    const GraphFile file = parse_graph_text(r.toml, r.toml_name);
    const Program program = compile(std::make_shared<const Graph>(file.graph), batch);
    for (const OnnxImportIo& out : r.outputs) {
      Shape want = out.engine_shape;
      if (want[0] == kSymbolic) want[0] = batch;
      const Shape& got = program.values.at(program.outputs.at(out.onnx_name)).shape;
      if (got != want)
        fail("output '" + out.onnx_name + "' is " + shape_str(got) + " in the engine, " +
             shape_str(want) + " expected");
    }
    ParamStore store;
    store.init(program, 0);
    store.load_tensors(r.weights, "the imported weights");
  } catch (const OnnxFormatError&) {
    throw;
  } catch (const std::exception& e) {
    fail(e.what());
  }
}

}  // namespace

OnnxImport import_onnx_bytes(const std::string& model_bytes, const OnnxImportOptions& opt) {
  const onnx::ModelProto model = parse_model(model_bytes, opt.source);
  OnnxImport r = Importer(model, opt).run();
  check_result(r, opt.source);
  return r;
}

OnnxImport import_onnx(const fs::path& model, const fs::path& graph_out,
                       const fs::path& weights_out, OnnxImportOptions opt) {
  if (opt.source == OnnxImportOptions{}.source) opt.source = model.string();
  if (graph_out.empty() || weights_out.empty())
    throw std::invalid_argument("ONNX import: both output paths are needed");
  if (fs::weakly_canonical(graph_out) == fs::weakly_canonical(weights_out))
    throw std::invalid_argument("ONNX import: the graph file and the weights file are both " +
                                graph_out.string());
  std::string bytes;
  try {
    bytes = read_file(model);
  } catch (const std::exception& e) {
    throw OnnxFormatError(e.what());
  }
  OnnxImport r = import_onnx_bytes(bytes, opt);
  // Both files atomically, the weights first; should the graph file then fail, the weights
  // file is put back as it was, so that a failure leaves no half-written pair.
  std::optional<std::string> previous_weights;
  if (fs::exists(weights_out)) previous_weights = read_file(weights_out);
  write_safetensors(weights_out, r.weights);
  try {
    write_file_atomic(graph_out, r.toml);
  } catch (...) {
    std::error_code ec;
    if (previous_weights)
      write_file_atomic(weights_out, *previous_weights);
    else
      fs::remove(weights_out, ec);
    throw;
  }
  return r;
}

std::vector<std::string> onnx_weight_inputs(const std::string& model_bytes) {
  const onnx::ModelProto model = parse_model(model_bytes, "ONNX model");
  const onnx::GraphProto& g = model.graph();
  std::set<std::string> initializers, weights;
  for (const auto& t : g.initializer()) initializers.insert(t.name());
  for (const auto& n : g.node()) {
    const OpRule* r = default_domain(n.domain()) ? find_rule(n.op_type()) : nullptr;
    if (!r) continue;
    for (int i : r->weight_inputs)
      if (i < n.input_size() && !n.input(i).empty()) weights.insert(n.input(i));
  }
  std::vector<std::string> names;
  for (const auto& in : g.input())
    if (weights.count(in.name()) && !initializers.count(in.name())) names.push_back(in.name());
  return names;
}

NamedTensor onnx_float_tensor(const std::string& tensor_bytes, const std::string& what) {
  onnx::TensorProto t;
  check_parse_cost(tensor_bytes, *onnx::TensorProto::descriptor(), what);
  if (!t.ParseFromString(tensor_bytes))
    throw OnnxFormatError(what + ": does not parse as an onnx.TensorProto");
  if (t.data_type() != onnx::TensorProto::FLOAT)
    throw OnnxUnsupportedError(what + ": the tensor is " + type_name(t.data_type()) +
                               ", not float32");
  NamedTensor out;
  out.name = t.name();
  out.shape.assign(t.dims().begin(), t.dims().end());
  const int64_t n = checked_numel(out.shape);
  if (n < 0) throw OnnxFormatError(what + ": invalid dims " + dims_str(out.shape));
  out.data.resize(static_cast<size_t>(n));
  if (t.has_raw_data()) {
    if (t.raw_data().size() != out.data.size() * sizeof(float))
      throw OnnxFormatError(what + ": " + std::to_string(t.raw_data().size()) +
                            " bytes of data for dims " + dims_str(out.shape));
    std::memcpy(out.data.data(), t.raw_data().data(), t.raw_data().size());
  } else {
    if (t.float_data_size() != n)
      throw OnnxFormatError(what + ": " + std::to_string(t.float_data_size()) +
                            " values for dims " + dims_str(out.shape));
    std::copy(t.float_data().begin(), t.float_data().end(), out.data.begin());
  }
  return out;
}

}  // namespace emt
