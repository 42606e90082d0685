// ONNX export: the exported model passes the ONNX checker, has the documented interface
// (inputs/outputs by graph name, dynamic batch "N", no dropout, metadata), and ONNX Runtime
// (onnxruntime-node, through tools/ort/run_model.js) computes what our engine computes in eval
// mode, with random weights and non-trivial batch-norm statistics. Comparisons against ORT skip
// only when node or the onnxruntime-node package is missing; tools/setup.sh installs the package.
#include <gtest/gtest.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/compiler/program.h"
#include "engine/dsl/parser.h"
#include "engine/io/atomic_file.h"
#include "engine/onnx/export.h"
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
using emt::test::ort_unavailable;
using emt::test::OrtOutput;
using emt::test::random_input;
using emt::test::source_dir;

class OnnxExportTest : public emt::test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    emt::init_threading(2);
  }

  emt::GraphFile parse(const fs::path& file) {
    return emt::parse_graph_file(file, {"data.input_size=64"});
  }

  static onnx::ModelProto load(const fs::path& path) {
    onnx::ModelProto proto;
    const std::string bytes = emt::read_file(path);
    EXPECT_TRUE(proto.ParseFromString(bytes)) << path;
    return proto;
  }

  // Exports `model`, checks the file, runs a random batch of 2 through the engine (eval) and
  // through ORT, and compares every ONNX output with the engine value `expected` maps it to.
  // The engine side runs `reference` (default: `model`), which must hold the same parameters;
  // values that are not public outputs of it may be overwritten by later steps.
  void check_against_ort(Model& model, const emt::OnnxExportOptions& opt,
                         const std::map<std::string, std::string>& expected,
                         Model* reference = nullptr) {
    const fs::path path = dir_ / (model.graph().name + ".onnx");
    ASSERT_NO_THROW(emt::export_onnx(model, path, opt));
    const onnx::ModelProto proto = load(path);
    EXPECT_NO_THROW(onnx::checker::check_model(proto));
    std::vector<std::string> names;
    for (const auto& out : proto.graph().output()) names.push_back(out.name());
    std::vector<std::string> want;
    for (const auto& [name, value] : expected) want.push_back(name);
    std::sort(names.begin(), names.end());
    EXPECT_EQ(names, want);

    const std::string why = ort_unavailable();
    if (!why.empty()) EMT_SKIP_MISSING("export checked, ONNX Runtime comparison skipped: " << why);

    constexpr int64_t kBatch = 2;
    emt::Executor& ex = (reference ? *reference : model).executor(kBatch, Mode::kEval);
    const std::string input_name = model.graph().inputs.at(0).name;
    emt::Tensor in = ex.value(input_name);
    const std::vector<float> input = random_input(in.numel(), 1234);
    std::copy(input.begin(), input.end(), in.data);
    ex.forward();

    const auto ort = emt::test::run_ort(dir_, path, input, in.shape);
    ASSERT_EQ(ort.size(), expected.size());
    for (const auto& [name, value] : expected) {
      SCOPED_TRACE("output " + name + " (engine value " + value + ")");
      ASSERT_TRUE(ort.count(name));
      const OrtOutput& got = ort.at(name);
      const emt::Tensor want_t = ex.value(value);
      ASSERT_EQ(got.shape, want_t.shape);
      ASSERT_EQ(static_cast<int64_t>(got.data.size()), want_t.numel());
      double max_diff = 0, max_abs = 0;
      int64_t non_finite = 0;
      for (size_t i = 0; i < got.data.size(); ++i) {
        non_finite += !std::isfinite(got.data[i]) || !std::isfinite(want_t.data[i]);
        max_diff = std::max(max_diff, std::fabs(double(got.data[i]) - want_t.data[i]));
        max_abs = std::max(max_abs, std::fabs(double(want_t.data[i])));
      }
      EXPECT_EQ(non_finite, 0) << "NaN or infinity in the engine's or ORT's output";
      // Probabilities: 1e-4 absolute. Logits and other unbounded values: relative to their largest
      // magnitude (ORT fuses batch norm into the convolutions, which reorders the rounding).
      EXPECT_LE(max_diff, 1e-4 * std::max(1.0, max_abs)) << "largest |value| " << max_abs;
      std::printf("[   info   ] %s %s: max |engine - ORT| = %.3g (largest |value| %.3g)\n",
                  model.graph().name.c_str(), name.c_str(), max_diff, max_abs);
    }
  }
};

TEST_F(OnnxExportTest, EmtnetInterfaceAndMetadata) {
  const emt::GraphFile file = parse(source_dir() / "graphs" / "emtnet.toml");
  Model model(file, 11);
  emt::OnnxExportOptions opt;
  opt.config = &file.config;
  const onnx::ModelProto proto = [&] {
    onnx::ModelProto p;
    EXPECT_TRUE(p.ParseFromString(emt::export_onnx_bytes(model, opt)));
    return p;
  }();
  ASSERT_EQ(proto.opset_import_size(), 1);
  EXPECT_EQ(proto.opset_import(0).domain(), "");
  EXPECT_EQ(proto.opset_import(0).version(), 13);

  const onnx::GraphProto& g = proto.graph();
  ASSERT_EQ(g.input_size(), 1);
  EXPECT_EQ(g.input(0).name(), "image");
  const auto& in_shape = g.input(0).type().tensor_type().shape();
  ASSERT_EQ(in_shape.dim_size(), 4);
  EXPECT_EQ(in_shape.dim(0).dim_param(), "N");
  EXPECT_EQ(in_shape.dim(1).dim_value(), 3);
  EXPECT_EQ(in_shape.dim(2).dim_value(), 64);
  EXPECT_EQ(in_shape.dim(3).dim_value(), 64);
  ASSERT_EQ(g.output_size(), 2);  // no logits unless asked
  std::map<std::string, std::vector<std::string>> out_dims;
  for (const auto& out : g.output())
    for (const auto& d : out.type().tensor_type().shape().dim())
      out_dims[out.name()].push_back(d.has_dim_param() ? d.dim_param()
                                                       : std::to_string(d.dim_value()));
  EXPECT_EQ(out_dims["cls"], (std::vector<std::string>{"N", "1"}));
  EXPECT_EQ(out_dims["seg"], (std::vector<std::string>{"N", "1", "64", "64"}));

  std::map<std::string, int> ops;
  for (const auto& n : g.node()) ++ops[n.op_type()];
  EXPECT_EQ(ops.count("Dropout"), 0u);
  EXPECT_EQ(ops["Conv"], 27 + 8 + 1);  // backbone, decoder 1x1s, final conv
  EXPECT_EQ(ops["ConvTranspose"], 5);
  EXPECT_EQ(ops["BatchNormalization"], 27 + 8 + 5);
  EXPECT_EQ(ops["Gemm"], 3);
  EXPECT_EQ(ops["GlobalAveragePool"], 1);
  EXPECT_EQ(ops["Flatten"], 1);
  EXPECT_EQ(ops["Add"], 4);
  EXPECT_EQ(ops["Sigmoid"], 2);
  for (const auto& n : g.node())
    if (n.op_type() == "BatchNormalization") {
      ASSERT_EQ(n.input_size(), 5) << n.name();
      EXPECT_EQ(n.input(3), n.name() + ".running_mean");
      EXPECT_EQ(n.input(4), n.name() + ".running_var");
    }

  // Every trainable weight and every running statistic is an initializer, once.
  int64_t initialized = 0;
  for (const auto& t : g.initializer()) {
    int64_t count = 1;
    for (int64_t d : t.dims()) count *= d;
    initialized += count;
  }
  const emt::Program program = emt::compile(std::make_shared<const emt::Graph>(model.graph()), 1);
  EXPECT_EQ(initialized, program.trainable_param_count() + program.state_param_count());

  std::map<std::string, std::string> meta;
  for (const auto& e : proto.metadata_props()) meta[e.key()] = e.value();
  EXPECT_EQ(meta["graph"], "emtnet");
  EXPECT_EQ(meta["W_p"], "1.5");
  EXPECT_EQ(meta["W_c"], "3");
  EXPECT_EQ(meta["norm_mean"], "0.5");
  EXPECT_EQ(meta["norm_std"], "0.25");
  EXPECT_NE(meta["input_normalisation"].find("/ 255"), std::string::npos);
}

TEST_F(OnnxExportTest, EmtnetMatchesOnnxRuntime) {
  const emt::GraphFile file = parse(source_dir() / "graphs" / "emtnet.toml");
  Model model(file, 11);
  emt::test::randomize_params(model, 5);
  // The engine frees the logits once the sigmoids have read them: the reference run exposes
  // them as outputs, with the same parameters.
  emt::GraphFile with_logits = file;
  with_logits.graph.outputs.push_back({"cls_logit", "cls_logit", {}});
  with_logits.graph.outputs.push_back({"seg_logit", "seg.logit", {}});
  Model reference(with_logits, 11);
  for (const std::string& name : model.params().names())
    reference.params().at(name).value = model.params().at(name).value;

  emt::OnnxExportOptions opt;
  opt.include_logits = true;
  opt.config = &file.config;
  check_against_ort(model, opt,
                    {{"cls", "cls_prob"},
                     {"seg", "seg_prob"},
                     {"cls_logit", "cls_logit"},
                     {"seg_logit", "seg.logit"}},
                    &reference);
}

TEST_F(OnnxExportTest, SingleClfMatchesOnnxRuntime) {
  Model model(parse(source_dir() / "graphs" / "single_clf.toml"), 12);
  emt::test::randomize_params(model, 6);
  check_against_ort(model, {}, {{"cls", "cls_prob"}});
}

TEST_F(OnnxExportTest, SingleSgmMatchesOnnxRuntime) {
  Model model(parse(source_dir() / "graphs" / "single_sgm.toml"), 13);
  emt::test::randomize_params(model, 7);
  check_against_ort(model, {}, {{"seg", "seg_prob"}});
}

// The ops and attributes EMT-Net does not use: relu6, grouped and unpadded strided convs, a
// transposed conv with explicit pad 0, batch norm on [N,C], dropout as a public output (exported
// through an Identity) and a graph input exported as an output.
TEST_F(OnnxExportTest, OtherOpsAndAttributesMatchOnnxRuntime) {
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
  Model model(emt::parse_graph_file(graph), 14);
  emt::test::randomize_params(model, 8);
  for (float& w : model.params().at("c1.weight").value) w *= 8;  // drive relu6 into both clamps
  check_against_ort(model, {},
                    {{"prob", "prob"}, {"feat", "feat_drop"}, {"raw", "image"}, {"act", "r1"}});
  if (HasFatalFailure() || IsSkipped()) return;
  const emt::Tensor act = model.executor(2, Mode::kEval).value("r1");
  EXPECT_EQ(*std::min_element(act.data, act.data + act.numel()), 0.0f);
  EXPECT_EQ(*std::max_element(act.data, act.data + act.numel()), 6.0f);
}

TEST_F(OnnxExportTest, FailedExportWritesNothing) {
  Model model(parse(source_dir() / "graphs" / "single_clf.toml"), 15);
  const fs::path path = dir_ / "model.onnx";
  emt::write_file_atomic(path, "previous");
  model.params().at("cls_logit.weight").value.resize(3);  // no longer matches [1,128]
  try {
    emt::export_onnx(model, path);
    ADD_FAILURE() << "export of a model with a mis-sized parameter succeeded";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("cls_logit.weight"), std::string::npos) << e.what();
  }
  EXPECT_EQ(emt::read_file(path), "previous");
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir_)) files += entry.is_regular_file();
  EXPECT_EQ(files, 1);
}

}  // namespace
