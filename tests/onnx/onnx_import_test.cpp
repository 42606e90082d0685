// ONNX import: EMT-Net survives export -> import -> export (same outputs through the engine,
// same op list), the independently built reference model (../shared/reference/emtnet_ref.onnx)
// computes in our engine what ONNX Runtime computes, the folds (GlobalAveragePool + Flatten /
// Reshape, MatMul + Add, Gemm's alpha/beta/transB, Transpose of a weight, Constant nodes) keep
// the values, names are sanitised, and every unsupported or malformed model is refused with one
// message naming the node, without writing anything.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "engine/dsl/parser.h"
#include "engine/io/atomic_file.h"
#include "engine/io/safetensors.h"
#include "engine/onnx/export.h"
#include "engine/onnx/import.h"
#include "engine/runtime/executor.h"
#include "engine/runtime/model.h"
#include "engine/runtime/threading.h"
#include "tests/engine/temp_dir_test.h"
#include "tests/onnx/ort_runner.h"
#include "tests/skip_or_fail.h"

namespace {

namespace fs = std::filesystem;
using emt::Mode;
using emt::Model;
using emt::Shape;
using emt::test::ort_unavailable;
using emt::test::random_input;
using emt::test::source_dir;

// The read-only shared folder: EMT_SHARED_DIR, else ../shared beside the source tree.
fs::path shared_dir() {
  if (const char* dir = std::getenv("EMT_SHARED_DIR")) return dir;
  return source_dir() / ".." / "shared";
}

// Randomized as in the export test, then marked updated.
void randomize_params(Model& model, uint32_t seed) {
  emt::test::randomize_params(model, seed);
  model.params().mark_updated();
}

std::vector<std::string> op_list(const std::string& model_bytes) {
  onnx::ModelProto proto;
  EXPECT_TRUE(proto.ParseFromString(model_bytes));
  std::vector<std::string> ops;
  for (const auto& n : proto.graph().node()) ops.push_back(n.op_type());
  return ops;
}

// Runs `input` through the model's eval executor; every public output by name.
std::map<std::string, std::vector<float>> run_engine(Model& model, int64_t batch,
                                                     const std::vector<float>& input) {
  emt::Executor& ex = model.executor(batch, Mode::kEval);
  emt::Tensor in = ex.value(model.graph().inputs.at(0).name);
  EXPECT_EQ(in.numel(), static_cast<int64_t>(input.size()));
  std::copy(input.begin(), input.end(), in.data);
  ex.forward();
  std::map<std::string, std::vector<float>> out;
  for (const auto& [name, value] : ex.program().outputs) {
    const emt::Tensor t = ex.value(value);
    out[name].assign(t.data, t.data + t.numel());
  }
  return out;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    const double d = std::fabs(double(a[i]) - b[i]);
    m = std::isfinite(d) ? std::max(m, d) : INFINITY;
  }
  return m;
}

double max_abs(const std::vector<float>& a) {
  double m = 0;
  for (float v : a) m = std::max(m, std::fabs(double(v)));
  return m;
}

emt::OnnxImportOptions named(const std::string& source) {
  emt::OnnxImportOptions opt;
  opt.source = source;
  return opt;
}

// The graph file without its comment lines and end-of-line comments.
std::string without_comments(const std::string& toml) {
  std::istringstream in(toml);
  std::string out;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind('#', 0) == 0) continue;
    const size_t comment = line.find("},  # ");
    out += (comment == std::string::npos ? line : line.substr(0, comment + 2)) + "\n";
  }
  return out;
}

// Small ONNX models written by hand.
class OnnxBuilder {
 public:
  explicit OnnxBuilder(int64_t opset = 13) {
    model_.set_ir_version(8);
    model_.set_producer_name("onnx_import_test");
    onnx::OperatorSetIdProto* o = model_.add_opset_import();
    o->set_domain("");
    o->set_version(opset);
    model_.mutable_graph()->set_name("test graph");
  }

  onnx::ModelProto& proto() { return model_; }
  onnx::GraphProto& graph() { return *model_.mutable_graph(); }

  // dims: -1 is the symbolic batch "N".
  void input(const std::string& name, const Shape& dims, int elem = onnx::TensorProto::FLOAT) {
    set_type(graph().add_input(), name, dims, elem);
  }
  void output(const std::string& name, const Shape& dims) {
    set_type(graph().add_output(), name, dims, onnx::TensorProto::FLOAT);
  }

  void init(const std::string& name, const Shape& dims, const std::vector<float>& data) {
    onnx::TensorProto* t = graph().add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims) t->add_dims(d);
    t->set_raw_data(
        std::string(reinterpret_cast<const char*>(data.data()), data.size() * sizeof(float)));
  }

  void init_i64(const std::string& name, const Shape& dims, const std::vector<int64_t>& data) {
    onnx::TensorProto* t = graph().add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT64);
    for (int64_t d : dims) t->add_dims(d);
    for (int64_t v : data) t->add_int64_data(v);
  }

  onnx::NodeProto* node(const std::string& op, const std::string& name,
                        const std::vector<std::string>& inputs,
                        const std::vector<std::string>& outputs) {
    onnx::NodeProto* n = graph().add_node();
    n->set_op_type(op);
    n->set_name(name);
    for (const auto& i : inputs) n->add_input(i);
    for (const auto& o : outputs) n->add_output(o);
    return n;
  }

  static void ints(onnx::NodeProto* n, const std::string& name, const std::vector<int64_t>& v) {
    onnx::AttributeProto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t x : v) a->add_ints(x);
  }
  static void int_attr(onnx::NodeProto* n, const std::string& name, int64_t v) {
    onnx::AttributeProto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  static void float_attr(onnx::NodeProto* n, const std::string& name, float v) {
    onnx::AttributeProto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(v);
  }
  static void string_attr(onnx::NodeProto* n, const std::string& name, const std::string& v) {
    onnx::AttributeProto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::STRING);
    a->set_s(v);
  }
  // A Constant node holding an int64 or float tensor.
  void constant_i64(const std::string& out, const std::vector<int64_t>& v) {
    onnx::NodeProto* n = node("Constant", out + "_const", {}, {out});
    onnx::AttributeProto* a = n->add_attribute();
    a->set_name("value");
    a->set_type(onnx::AttributeProto::TENSOR);
    onnx::TensorProto* t = a->mutable_t();
    t->set_data_type(onnx::TensorProto::INT64);
    t->add_dims(static_cast<int64_t>(v.size()));
    for (int64_t x : v) t->add_int64_data(x);
  }
  void constant_f(const std::string& out, const Shape& dims, const std::vector<float>& v) {
    onnx::NodeProto* n = node("Constant", out + "_const", {}, {out});
    onnx::AttributeProto* a = n->add_attribute();
    a->set_name("value");
    a->set_type(onnx::AttributeProto::TENSOR);
    onnx::TensorProto* t = a->mutable_t();
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims) t->add_dims(d);
    for (float x : v) t->add_float_data(x);
  }

  std::string bytes() const {
    std::string b;
    EXPECT_TRUE(model_.SerializeToString(&b));
    return b;
  }

 private:
  static void set_type(onnx::ValueInfoProto* info, const std::string& name, const Shape& dims,
                       int elem) {
    info->set_name(name);
    auto* t = info->mutable_type()->mutable_tensor_type();
    t->set_elem_type(elem);
    auto* s = t->mutable_shape();
    for (int64_t d : dims) {
      auto* dim = s->add_dim();
      if (d < 0)
        dim->set_dim_param("N");
      else
        dim->set_dim_value(d);
    }
  }

  onnx::ModelProto model_;
};

// x [N, 2, 5, 5] -> Relu (node 0) -> Conv 'conv_b' (node 1) -> y: the base that the refusal
// tests change one thing of.
OnnxBuilder conv_model() {
  OnnxBuilder b;
  b.input("x", {-1, 2, 5, 5});
  b.output("y", {-1, 3, 5, 5});
  b.init("w", {3, 2, 3, 3}, std::vector<float>(54, 0.1f));
  b.init("bias", {3}, {0.1f, 0.2f, 0.3f});
  b.node("Relu", "relu_a", {"x"}, {"r"});
  onnx::NodeProto* c = b.node("Conv", "conv_b", {"r", "w", "bias"}, {"y"});
  OnnxBuilder::ints(c, "kernel_shape", {3, 3});
  OnnxBuilder::ints(c, "pads", {1, 1, 1, 1});
  OnnxBuilder::ints(c, "strides", {1, 1});
  return b;
}

class OnnxImportTest : public emt::test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    emt::init_threading(2);
  }

  // Writes an import's files and builds the engine model from them, as `engine import-onnx`
  // and a later `parse_graph_file` + `load_tensors` would.
  Model load_import(const emt::OnnxImport& r, const std::string& stem,
                    const std::vector<std::string>& overrides = {}) {
    const fs::path toml = dir_ / (stem + ".toml");
    const fs::path weights = dir_ / (stem + ".safetensors");
    emt::write_file_atomic(toml, r.toml);
    emt::write_safetensors(weights, r.weights);
    Model model(emt::parse_graph_file(toml, overrides), 99);
    model.params().load_tensors(emt::read_safetensors(weights), weights.string());
    return model;
  }

  // The import must throw E with every piece of `expected` in its message, and write nothing.
  template <typename E>
  void expect_refused(const std::string& model_bytes, const std::vector<std::string>& expected) {
    const fs::path model = dir_ / "refused.onnx";
    const fs::path toml = dir_ / "refused.toml", weights = dir_ / "refused.safetensors";
    emt::write_file_atomic(model, model_bytes);
    std::string message;
    try {
      emt::import_onnx(model, toml, weights);
      ADD_FAILURE() << "the import succeeded";
    } catch (const E& e) {
      message = e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "wrong exception type: " << e.what();
    }
    for (const std::string& piece : expected)
      EXPECT_NE(message.find(piece), std::string::npos)
          << "'" << piece << "' is missing from: " << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << "one message, one line: " << message;
    EXPECT_FALSE(fs::exists(toml));
    EXPECT_FALSE(fs::exists(weights));
    int files = 0;
    for (const auto& entry : fs::directory_iterator(dir_)) files += entry.is_regular_file();
    EXPECT_EQ(files, 1) << "only the model file may be in " << dir_;
    fs::remove(model);
  }
};

TEST_F(OnnxImportTest, EmtnetRoundTripKeepsOutputsAndOps) {
  const emt::GraphFile file =
      emt::parse_graph_file(source_dir() / "graphs" / "emtnet.toml", {"data.input_size=64"});
  Model original(file, 11);
  randomize_params(original, 5);
  const std::string first = emt::export_onnx_bytes(original);

  const emt::OnnxImport imported = emt::import_onnx_bytes(first, named("emtnet.onnx"));
  // The interface keeps its names; one node per line.
  ASSERT_EQ(imported.inputs.size(), 1u);
  EXPECT_EQ(imported.inputs[0].engine_name, "image");
  EXPECT_EQ(imported.inputs[0].onnx_shape, (Shape{-1, 3, 64, 64}));
  ASSERT_EQ(imported.outputs.size(), 2u);
  EXPECT_EQ(imported.outputs[0].onnx_name, "cls");
  EXPECT_EQ(imported.outputs[1].onnx_name, "seg");
  EXPECT_NE(imported.toml.find("inputs = { image = [3, 64, 64] }"), std::string::npos);
  EXPECT_NE(imported.toml.find("outputs = { cls = \"cls_prob\", seg = \"seg_prob\" }"),
            std::string::npos)
      << imported.toml;
  EXPECT_NE(imported.toml.find("{ op = \"conv2d\", name = \"backbone_ds1_dw_conv\", kernel = 3, "
                               "pad = 1, depthwise = true, bias = false },"),
            std::string::npos)
      << imported.toml;
  EXPECT_NE(imported.toml.find("{ op = \"global_avg_pool\", name = \"cls_head_gap\""),
            std::string::npos)
      << imported.toml;
  int node_lines = 0;
  std::istringstream lines(imported.toml);
  for (std::string line; std::getline(lines, line);) node_lines += line.rfind("  { op = ", 0) == 0;
  EXPECT_EQ(node_lines, static_cast<int>(op_list(first).size()) - 1);  // GAP + Flatten: one node

  Model reimported = load_import(imported, "emtnet_imported");
  const std::vector<float> input = random_input(2 * 3 * 64 * 64, 77);
  const auto want = run_engine(original, 2, input);
  const auto got = run_engine(reimported, 2, input);
  for (const char* out : {"cls", "seg"}) {
    const double diff = max_abs_diff(got.at(out), want.at(out));
    EXPECT_LE(diff, 1e-5) << out;
    std::printf("[   info   ] round trip %s: max |original - imported| = %.3g\n", out, diff);
  }

  const std::string second = emt::export_onnx_bytes(reimported);
  EXPECT_EQ(op_list(second), op_list(first));
  // Importing the second export gives the same graph (comments aside: they quote ONNX names).
  EXPECT_EQ(without_comments(emt::import_onnx_bytes(second, named("emtnet.onnx")).toml),
            without_comments(imported.toml));
}

// The ops and attributes EMT-Net does not use (as in the export test): relu6, grouped and
// unpadded strided convs, a transposed conv with pad 0, batch norm on [N, C], dropout, a graph
// input exported as an output.
TEST_F(OnnxImportTest, OtherOpsRoundTrip) {
  const fs::path graph = write("misc.toml", R"toml(
[graph]
name = "misc"
inputs = { image = [4, 10, 10] }
outputs = { prob = "prob", feat = "feat_drop", raw = "image", act = "r1" }
nodes = [
  { op = "conv2d", name = "c1", in = "image", out = 6, kernel = 3, stride = 2, pad = 0, groups = 2 },
  { op = "relu6", name = "r1" },
  { op = "dropout", name = "d1", rate = 0.3 },
  { op = "conv_transpose2d", name = "up", out = 3, kernel = 2, stride = 2, pad = 0 },
  { op = "batch_norm", name = "bn1", eps = 0.5 },
  { op = "conv2d", name = "dw", depthwise = true, kernel = 5, bias = false },
  { op = "sigmoid", name = "prob" },
  { op = "global_avg_pool", name = "gap", in = "r1" },
  { op = "dense", name = "fc", out = 5, bias = false },
  { op = "batch_norm", name = "bn2" },
  { op = "relu6", name = "feat" },
  { op = "dropout", name = "feat_drop", rate = 0.5 },
]
)toml");
  Model original(emt::parse_graph_file(graph), 14);
  randomize_params(original, 8);
  for (float& w : original.params().at("c1.weight").value) w *= 8;  // both relu6 clamps
  const std::string first = emt::export_onnx_bytes(original);
  const emt::OnnxImport imported = emt::import_onnx_bytes(first);
  EXPECT_NE(imported.toml.find("groups = 2"), std::string::npos) << imported.toml;
  EXPECT_NE(imported.toml.find("{ op = \"relu6\", name = \"r1\" }"), std::string::npos);
  EXPECT_NE(imported.toml.find("raw = \"image\""), std::string::npos);
  Model reimported = load_import(imported, "misc_imported");
  const std::vector<float> input = random_input(2 * 4 * 10 * 10, 3);
  const auto want = run_engine(original, 2, input);
  const auto got = run_engine(reimported, 2, input);
  for (const char* out : {"prob", "feat", "raw", "act"})
    EXPECT_LE(max_abs_diff(got.at(out), want.at(out)), 1e-5) << out;
  EXPECT_EQ(op_list(emt::export_onnx_bytes(reimported)), op_list(first));
}

TEST_F(OnnxImportTest, ReferenceModelMatchesOnnxRuntime) {
  const fs::path model_path = shared_dir() / "reference" / "emtnet_ref.onnx";
  if (!fs::exists(model_path))
    EMT_SKIP_MISSING(model_path << " is absent (set EMT_SHARED_DIR to the shared folder)");
  const fs::path toml = dir_ / "emtnet_ref.toml", weights = dir_ / "emtnet_ref.safetensors";
  const emt::OnnxImport imported = emt::import_onnx(model_path, toml, weights);
  ASSERT_EQ(imported.inputs.size(), 1u);
  EXPECT_EQ(imported.inputs[0].engine_name, "input");
  ASSERT_EQ(imported.outputs.size(), 2u);
  EXPECT_EQ(imported.outputs[0].onnx_name, "cls_logit");
  EXPECT_EQ(imported.outputs[1].onnx_name, "seg_logit");
  EXPECT_EQ(imported.outputs[1].engine_shape, (Shape{-1, 1, 224, 224}));
  // Every initializer once: 5,112,898 parameters with every BN folded (shared/reference/README)
  // less the 512 biases of the transposed convs, whose 5 BNs are not folded (4 x 512 values).
  int64_t params = 0;
  for (const emt::NamedTensor& t : imported.weights.tensors) params += emt::shape_numel(t.shape);
  EXPECT_EQ(params, 5112898 - 512 + 4 * 512);

  const std::string why = ort_unavailable();
  if (!why.empty()) EMT_SKIP_MISSING("imported; ONNX Runtime comparison skipped: " << why);
  Model model(emt::parse_graph_file(toml), 1);
  model.params().load_tensors(emt::read_safetensors(weights), weights.string());
  const std::vector<float> input = random_input(3 * 224 * 224, 2024);
  const auto got = run_engine(model, 1, input);
  const auto ort = emt::test::run_ort(dir_, model_path, input, {1, 3, 224, 224});
  for (const char* out : {"cls_logit", "seg_logit"}) {
    ASSERT_TRUE(ort.count(out)) << out;
    const double diff = max_abs_diff(got.at(out), ort.at(out).data);
    const double scale = max_abs(ort.at(out).data);
    // Relative to the largest magnitude, as in the export test: ORT folds batch norms and
    // reorders the sums.
    EXPECT_LE(diff, 1e-4 * std::max(1.0, scale)) << out << ", largest |value| " << scale;
    std::printf("[   info   ] emtnet_ref %s: max |engine - ORT| = %.3g (largest |value| %.3g)\n",
                out, diff, scale);
  }
}

// GlobalAveragePool + Reshape([0, -1]) from a Constant, MatMul + Add, Gemm with transB = 0,
// alpha and beta, a Transpose of a weight, Clip(0, +inf), Dropout with a ratio input, Identity:
// the engine computes what the ONNX ops define.
TEST_F(OnnxImportTest, FoldsKeepTheValues) {
  OnnxBuilder b(13);
  b.input("input.1", {-1, 4, 3, 3});
  b.output("out", {-1, 2});
  b.output("pooled", {-1, 4, 1, 1});
  std::vector<float> w1(12), bias1 = {0.5f, -0.25f, 1.0f}, w2(6), c2 = {0.1f, -0.3f};
  for (size_t i = 0; i < w1.size(); ++i) w1[i] = 0.1f * static_cast<float>(i) - 0.4f;
  for (size_t i = 0; i < w2.size(); ++i) w2[i] = 0.2f * static_cast<float>(i) - 0.5f;
  b.init("w1_t", {3, 4}, [&] {  // w1 [4, 3] stored transposed, un-transposed by a Transpose
    std::vector<float> t(12);
    for (int r = 0; r < 4; ++r)
      for (int c = 0; c < 3; ++c) t[c * 4 + r] = w1[r * 3 + c];
    return t;
  }());
  b.init("w2", {3, 2}, w2);
  b.init("c2", {2}, c2);
  b.init("ratio", {}, {0.25f});
  b.node("GlobalAveragePool", "/head/pool", {"input.1"}, {"p"});
  b.node("GlobalAveragePool", "/head/pool2", {"input.1"}, {"pooled"});
  b.constant_i64("shape", {0, -1});
  b.node("Reshape", "/head/flat", {"p", "shape"}, {"f"});
  b.node("Transpose", "/head/w1", {"w1_t"}, {"w1"});
  b.node("MatMul", "/head/fc1/MatMul", {"f", "w1"}, {"m"});
  b.constant_f("b1", {3}, bias1);  // after the MatMul whose bias it is
  b.node("Add", "/head/fc1/Add", {"b1", "m"}, {"h"});
  b.constant_f("zero", {}, {0.0f});
  b.node("Clip", "/head/relu", {"h", "zero"}, {"hr"});  // no max: relu
  b.node("Identity", "/head/id", {"hr"}, {"hi"});
  b.node("Dropout", "/head/drop", {"hi", "ratio"}, {"hd"});
  onnx::NodeProto* gemm = b.node("Gemm", "/head/fc2", {"hd", "w2", "c2"}, {"out"});
  OnnxBuilder::float_attr(gemm, "alpha", 0.5f);
  OnnxBuilder::float_attr(gemm, "beta", 2.0f);

  const emt::OnnxImport imported = emt::import_onnx_bytes(b.bytes());
  EXPECT_EQ(imported.inputs[0].engine_name, "input_1");  // '.' is not allowed in names
  EXPECT_NE(imported.toml.find("inputs = { input_1 = [4, 3, 3] }"), std::string::npos)
      << imported.toml;
  // The pool takes the Reshape's place; the Identity disappears, so the dropout reads the relu.
  EXPECT_NE(imported.toml.find("{ op = \"global_avg_pool\", name = \"head_pool\", in = "
                               "\"input_1\" },  # 0 GlobalAveragePool '/head/pool' + 3 Reshape "
                               "'/head/flat'"),
            std::string::npos)
      << imported.toml;
  EXPECT_NE(imported.toml.find("{ op = \"dense\", name = \"head_fc1_MatMul\", in = \"head_pool\", "
                               "out = 3 },  # 5 MatMul '/head/fc1/MatMul' + 7 Add '/head/fc1/Add'"),
            std::string::npos)
      << imported.toml;
  EXPECT_NE(imported.toml.find("{ op = \"relu\", name = \"head_relu\" }"), std::string::npos);
  EXPECT_NE(imported.toml.find("{ op = \"dropout\", name = \"head_drop\", rate = 0.25 }"),
            std::string::npos)
      << imported.toml;
  EXPECT_EQ(imported.outputs[1].engine_shape, (Shape{-1, 4}));
  ASSERT_FALSE(imported.notes.empty());

  Model model = load_import(imported, "folds");
  const int64_t batch = 2;
  const std::vector<float> input = random_input(batch * 4 * 9, 11);
  const auto got = run_engine(model, batch, input);
  for (int64_t n = 0; n < batch; ++n) {
    float pooled[4], h[3];
    for (int c = 0; c < 4; ++c) {
      double s = 0;
      for (int i = 0; i < 9; ++i) s += input[static_cast<size_t>((n * 4 + c) * 9 + i)];
      pooled[c] = static_cast<float>(s / 9);
      EXPECT_NEAR(got.at("pooled")[static_cast<size_t>(n * 4 + c)], pooled[c], 1e-6);
    }
    for (int j = 0; j < 3; ++j) {
      float s = bias1[j];
      for (int c = 0; c < 4; ++c) s += pooled[c] * w1[c * 3 + j];
      h[j] = std::max(s, 0.0f);
    }
    for (int o = 0; o < 2; ++o) {
      float s = 2.0f * c2[o];
      for (int j = 0; j < 3; ++j) s += 0.5f * h[j] * w2[j * 2 + o];
      EXPECT_NEAR(got.at("out")[static_cast<size_t>(n * 2 + o)], s, 1e-5) << n << " " << o;
    }
  }
}

// Opset 10: Clip's bounds and Dropout's ratio are attributes, BatchNormalization is version 9.
TEST_F(OnnxImportTest, OlderOpsetsUseAttributes) {
  OnnxBuilder b(10);
  b.input("x", {2, 3});
  b.output("y", {2, 3});
  b.init("s", {3}, {1, 1, 1});
  b.init("b", {3}, {0, 0, 0});
  b.init("m", {3}, {0, 0, 0});
  b.init("v", {3}, {1, 1, 1});
  onnx::NodeProto* bn = b.node("BatchNormalization", "bn", {"x", "s", "b", "m", "v"}, {"n"});
  OnnxBuilder::float_attr(bn, "epsilon", 0.0f);
  OnnxBuilder::float_attr(bn, "momentum", 0.8f);
  onnx::NodeProto* clip = b.node("Clip", "clip", {"n"}, {"c"});
  OnnxBuilder::float_attr(clip, "min", 0.0f);
  OnnxBuilder::float_attr(clip, "max", 6.0f);
  OnnxBuilder::float_attr(b.node("Dropout", "drop", {"c"}, {"y"}), "ratio", 0.2f);
  const emt::OnnxImport imported = emt::import_onnx_bytes(b.bytes());
  EXPECT_NE(imported.toml.find("{ op = \"batch_norm\", name = \"bn\", in = \"x\", eps = 0.0, "
                               "momentum = 0.2 }"),
            std::string::npos)
      << imported.toml;
  EXPECT_NE(imported.toml.find("{ op = \"relu6\", name = \"clip\" }"), std::string::npos);
  EXPECT_NE(imported.toml.find("{ op = \"dropout\", name = \"drop\", rate = 0.2 }"),
            std::string::npos);
  EXPECT_NE(imported.toml.find("# The ONNX batch axis is fixed at 2."), std::string::npos);
  Model model = load_import(imported, "old");
  const auto got = run_engine(model, 2, {-1, 0.5f, 7, 3, -0.25f, 6.5f});
  const std::vector<float> want = {0, 0.5f, 6, 3, 0, 6};
  EXPECT_EQ(got.at("y"), want);
}

TEST_F(OnnxImportTest, WritesBothFilesOrNeither) {
  OnnxBuilder b = conv_model();
  const fs::path model = write("m.onnx", "");
  emt::write_file_atomic(model, b.bytes());
  const fs::path toml = dir_ / "g.toml", weights = dir_ / "w.safetensors";
  const emt::OnnxImport r = emt::import_onnx(model, toml, weights);
  EXPECT_EQ(emt::read_file(toml), r.toml);
  EXPECT_NE(r.toml.find("# Imported from " + model.string()), std::string::npos);
  EXPECT_NE(r.toml.find("# 1 Conv 'conv_b'"), std::string::npos) << r.toml;
  const emt::SafetensorsFile w = emt::read_safetensors(weights);
  ASSERT_EQ(w.tensors.size(), 2u);
  EXPECT_EQ(w.tensors[0].name, "conv_b.weight");
  EXPECT_EQ(w.tensors[1].name, "conv_b.bias");

  // A failing import leaves the previous pair as it was.
  b.graph().mutable_node(1)->mutable_attribute(1)->set_ints(0, 0);  // asymmetric pads
  emt::write_file_atomic(model, b.bytes());
  emt::write_file_atomic(toml, "previous graph");
  emt::write_file_atomic(weights, "previous weights");
  EXPECT_THROW(emt::import_onnx(model, toml, weights), emt::OnnxUnsupportedError);
  EXPECT_EQ(emt::read_file(toml), "previous graph");
  EXPECT_EQ(emt::read_file(weights), "previous weights");
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir_)) files += entry.is_regular_file();
  EXPECT_EQ(files, 3);
}

TEST_F(OnnxImportTest, UnsupportedNamesOpNodeAndIndex) {
  const std::vector<std::string> at = {"node 1 'conv_b' (Conv)"};
  const auto with = [&](const std::vector<std::string>& extra) {
    std::vector<std::string> v = at;
    v.insert(v.end(), extra.begin(), extra.end());
    return v;
  };
  {
    OnnxBuilder b = conv_model();
    b.graph().mutable_node(1)->mutable_attribute(1)->set_ints(2, 0);
    expect_refused<emt::OnnxUnsupportedError>(b.bytes(), with({"asymmetric pads [1, 1, 0, 1]"}));
  }
  {
    OnnxBuilder b = conv_model();
    OnnxBuilder::ints(b.graph().mutable_node(1), "dilations", {2, 2});
    expect_refused<emt::OnnxUnsupportedError>(b.bytes(), with({"dilations [2, 2]"}));
  }
  {
    OnnxBuilder b = conv_model();
    b.graph().mutable_node(1)->clear_attribute();
    OnnxBuilder::string_attr(b.graph().mutable_node(1), "auto_pad", "SAME_UPPER");
    expect_refused<emt::OnnxUnsupportedError>(b.bytes(), with({"auto_pad = SAME_UPPER"}));
  }
  {
    OnnxBuilder b = conv_model();
    b.graph().mutable_initializer(0)->set_data_type(onnx::TensorProto::DOUBLE);
    b.graph().mutable_initializer(0)->set_raw_data(std::string(54 * 8, '\0'));
    expect_refused<emt::OnnxUnsupportedError>(b.bytes(), with({"weight 'w' is float64"}));
  }
  {
    OnnxBuilder b = conv_model();
    b.graph().mutable_node(1)->set_op_type("MaxPool");
    expect_refused<emt::OnnxUnsupportedError>(
        b.bytes(), {"node 1 'conv_b' (MaxPool)", "no engine equivalent", "Conv, ConvTranspose"});
  }
  {
    OnnxBuilder b = conv_model();
    b.graph().mutable_node(1)->set_domain("com.microsoft");
    expect_refused<emt::OnnxUnsupportedError>(b.bytes(), with({"domain 'com.microsoft'"}));
  }
  {
    OnnxBuilder b = conv_model();
    b.graph().mutable_input(0)->mutable_type()->mutable_tensor_type()->set_elem_type(
        onnx::TensorProto::UINT8);
    expect_refused<emt::OnnxUnsupportedError>(b.bytes(),
                                              {"node 0 'relu_a' (Relu)", "'x' is uint8"});
  }
  {
    OnnxBuilder b = conv_model();  // an unnamed node is named by its output
    b.graph().mutable_node(1)->clear_name();
    OnnxBuilder::ints(b.graph().mutable_node(1), "dilations", {1, 2});
    expect_refused<emt::OnnxUnsupportedError>(b.bytes(),
                                              {"node 1 (Conv, unnamed, output 'y')", "[1, 2]"});
  }
  {
    OnnxBuilder b = conv_model();  // W as a runtime input
    b.graph().mutable_initializer()->DeleteSubrange(0, 1);
    auto* in = b.graph().add_input();
    *in = b.graph().input(0);
    in->set_name("w");
    expect_refused<emt::OnnxUnsupportedError>(b.bytes(), with({"'w' is a runtime graph input"}));
    EXPECT_EQ(emt::onnx_weight_inputs(b.bytes()), std::vector<std::string>{"w"});
  }
}

TEST_F(OnnxImportTest, MalformedFilesAreRefused) {
  const emt::GraphFile file =
      emt::parse_graph_file(source_dir() / "graphs" / "single_clf.toml", {"data.input_size=32"});
  Model model(file, 3);
  const std::string good = emt::export_onnx_bytes(model);
  EXPECT_NO_THROW(emt::import_onnx_bytes(good));
  for (size_t keep : {size_t{0}, size_t{7}, good.size() / 3, good.size() / 2, good.size() - 1})
    expect_refused<emt::OnnxFormatError>(good.substr(0, keep), {"refused.onnx"});
  expect_refused<emt::OnnxFormatError>(good.substr(0, good.size() / 2), {"does not parse"});
  expect_refused<emt::OnnxFormatError>("not a model at all", {"refused.onnx"});

  {
    OnnxBuilder b = conv_model();
    b.proto().clear_opset_import();
    expect_refused<emt::OnnxFormatError>(b.bytes(), {"imports no opset"});
  }
  {
    OnnxBuilder b = conv_model();
    b.proto().mutable_opset_import(0)->set_version(99);
    expect_refused<emt::OnnxFormatError>(b.bytes(), {"opset 99", "outside what this importer"});
  }
  {
    OnnxBuilder b = conv_model();
    b.proto().mutable_opset_import(0)->set_version(5);  // Relu version 1 (consumed_inputs)
    expect_refused<emt::OnnxFormatError>(
        b.bytes(), {"node 0 'relu_a' (Relu)", "opset 5 gives Relu version 1, too old"});
  }
  {
    OnnxBuilder b = conv_model();
    b.graph().mutable_node(1)->set_input(2, "missing_bias");
    expect_refused<emt::OnnxFormatError>(
        b.bytes(), {"node 1 'conv_b' (Conv)", "'missing_bias'", "missing initializer"});
  }
  {
    OnnxBuilder b = conv_model();  // the weight for 4 input channels, the input has 2
    b.graph().mutable_initializer(0)->set_dims(1, 4);
    b.graph().mutable_initializer(0)->set_raw_data(std::string(3 * 4 * 9 * 4, '\0'));
    expect_refused<emt::OnnxFormatError>(b.bytes(), {"node 1 'conv_b' (Conv)", "[3, 4, 3, 3]",
                                                     "does not fit the input [N, 2, 5, 5]"});
  }
  {
    OnnxBuilder b = conv_model();  // dims and data disagree
    b.graph().mutable_initializer(1)->set_raw_data(std::string(8, '\0'));
    expect_refused<emt::OnnxFormatError>(b.bytes(),
                                         {"initializer 'bias' has dims [3]", "8 bytes of data"});
  }
  {
    OnnxBuilder b = conv_model();  // the declared output shape disagrees with the graph
    b.graph()
        .mutable_output(0)
        ->mutable_type()
        ->mutable_tensor_type()
        ->mutable_shape()
        ->mutable_dim(2)
        ->set_dim_value(4);
    expect_refused<emt::OnnxFormatError>(
        b.bytes(),
        {"node 1 'conv_b' (Conv)", "'y' is declared [N, 3, 4, 5] but computes [N, 3, 5, 5]"});
  }
  {
    OnnxBuilder b = conv_model();  // nodes out of order
    b.graph().mutable_node()->SwapElements(0, 1);
    expect_refused<emt::OnnxFormatError>(b.bytes(), {"topological order"});
  }
}

TEST_F(OnnxImportTest, BatchNormStatisticsMustMatchChannels) {
  OnnxBuilder b;
  b.input("x", {-1, 3, 4, 4});
  b.output("y", {-1, 3, 4, 4});
  for (const char* name : {"s", "b", "m"}) b.init(name, {3}, {1, 1, 1});
  b.init("v", {2}, {1, 1});
  b.node("BatchNormalization", "bn", {"x", "s", "b", "m", "v"}, {"y"});
  expect_refused<emt::OnnxFormatError>(b.bytes(),
                                       {"node 0 'bn' (BatchNormalization)", "var 'v' is [2]"});
}

}  // namespace
