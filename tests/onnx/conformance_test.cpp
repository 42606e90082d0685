// ONNX import conformance: ONNX's backend test cases (Debian's libonnx-testdata:
// data/node/test_<name>/model.onnx with test_data_set_*/input_<k>.pb and output_<k>.pb, plus
// the 2-D layer cases of data/pytorch-converted) for every op the importer supports are
// imported, run through the engine (eval mode, reference and oneDNN backends) and compared with
// the expected outputs at rtol 1e-3, atol 1e-7.
//
// Weights given as runtime inputs: most node tests feed Conv's W, Gemm's B and C,
// BatchNormalization's statistics, Clip's bounds, Dropout's ratio and Reshape's shape as graph
// inputs, while the engine needs them as parameters. The harness asks onnx_weight_inputs()
// which graph inputs the model reads as weights, binds each to its tensor from the data set
// (OnnxImportOptions::constant_inputs, the input_<k>.pb bytes) -- so they become initializers --
// and feeds only the remaining inputs at run time. Each data set is imported on its own.
//
// A case outside the engine's scope (1-D/3-D, integer types, training mode, broadcasting,
// asymmetric pads, ...) is listed in kOutOfScope with the reason; it is reported as skipped only
// if the importer refuses it (OnnxUnsupportedError), so the list cannot hide a regression, and a
// listed case that starts importing fails until the list is updated. A case not listed must pass.
//
// This file is also globbed into onnx_tests, where EMT_ONNX_CONFORMANCE is not defined and it
// compiles to nothing: tests/CMakeLists.txt builds it alone as onnx_conformance_tests, whose
// tests carry the ctest label onnx-conformance. The test OnnxConformanceSummary.PerOp prints
// "passed / skipped / total" per op.
#ifdef EMT_ONNX_CONFORMANCE

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "engine/dsl/parser.h"
#include "engine/io/atomic_file.h"
#include "engine/io/safetensors.h"
#include "engine/onnx/import.h"
#include "engine/runtime/executor.h"
#include "engine/runtime/model.h"
#include "engine/runtime/threading.h"
#include "tests/skip_or_fail.h"

namespace {

namespace fs = std::filesystem;

constexpr double kRtol = 1e-3, kAtol = 1e-7;

// Where libonnx-testdata put the data: EMT_ONNX_TESTDATA_DIR, else the package's paths.
fs::path testdata_dir() {
  if (const char* dir = std::getenv("EMT_ONNX_TESTDATA_DIR")) return dir;
  for (const char* dir : {"/usr/share/libonnx-testdata/data", "/usr/include/onnx/backend/test/data",
                          "/usr/share/onnx/backend/test/data"})
    if (fs::is_directory(fs::path(dir) / "node")) return dir;
  return {};
}

// The ops in scope and the case names that exercise them, by prefix (first match wins).
struct OpGroup {
  const char* op;
  const char* folder;
  std::vector<const char*> prefixes;
};

const std::vector<OpGroup>& op_groups() {
  static const std::vector<OpGroup> groups = {
      {"ConvTranspose", "node", {"test_convtranspose"}},
      {"Conv", "node", {"test_conv", "test_basic_conv"}},
      {"BatchNormalization", "node", {"test_batchnorm"}},
      {"Relu", "node", {"test_relu"}},
      {"Add", "node", {"test_add"}},
      {"Clip", "node", {"test_clip"}},
      {"GlobalAveragePool", "node", {"test_globalaveragepool"}},
      {"Gemm", "node", {"test_gemm"}},
      {"MatMul", "node", {"test_matmul"}},
      {"Sigmoid", "node", {"test_sigmoid"}},
      {"Dropout", "node", {"test_dropout", "test_training_dropout"}},
      {"Flatten", "node", {"test_flatten"}},
      {"Reshape", "node", {"test_reshape"}},
      // PyTorch layers exported to ONNX: the grouped and depthwise convolutions, eval batch
      // norms and linear layers that the node tests lack.
      {"ConvTranspose", "pytorch-converted", {"test_ConvTranspose"}},
      {"Conv", "pytorch-converted", {"test_Conv"}},
      {"BatchNormalization", "pytorch-converted", {"test_BatchNorm"}},
      {"Relu", "pytorch-converted", {"test_ReLU"}},
      {"Sigmoid", "pytorch-converted", {"test_Sigmoid"}},
      {"Gemm", "pytorch-converted", {"test_Linear"}},
  };
  return groups;
}

// Cases the engine cannot express, with the reason (the importer's message follows it).
const std::map<std::string, std::string>& out_of_scope() {
  const std::string one_d =
      "1-D input: the engine's tensors are [N, ...] with a batch axis and "
      "at least one more";
  const std::string integer = "integer types: the engine computes in float32";
  const std::string reshape =
      "standalone reshape: the engine has no reshape op (a Flatten or "
      "Reshape to [N, C] after GlobalAveragePool is folded away)";
  const std::string strides =
      "unequal strides [3, 2] (and output_shape): the engine has one "
      "stride for both axes";
  static const std::map<std::string, std::string> table = {
      {"node/test_add_bcast", "broadcasting add [3, 4, 5] + [5] (y is 1-D)"},
      {"node/test_add_uint8", integer},
      {"node/test_basic_convinteger", integer},
      {"node/test_convinteger_with_padding", integer},
      {"node/test_convinteger_without_padding", integer},
      {"node/test_batchnorm_epsilon_training_mode", "training mode (batch statistics)"},
      {"node/test_batchnorm_example_training_mode", "training mode (batch statistics)"},
      {"node/test_clip", "Clip(-1, 1): only Clip(0, 6) (relu6) and Clip(0, +inf) (relu)"},
      {"node/test_clip_default_max", "Clip(-inf, 0): only relu6 and relu bounds"},
      {"node/test_clip_default_inbounds", one_d},
      {"node/test_clip_default_int8_inbounds", integer},
      {"node/test_clip_default_int8_max", integer},
      {"node/test_clip_default_int8_min", integer},
      {"node/test_clip_example", one_d},
      {"node/test_clip_inbounds", one_d},
      {"node/test_clip_outbounds", one_d},
      {"node/test_clip_splitbounds", one_d},
      {"node/test_conv_with_autopad_same", "auto_pad = SAME_LOWER"},
      {"node/test_conv_with_strides_and_asymmetric_padding", "asymmetric pads [1, 0, 1, 0]"},
      {"node/test_convtranspose_1d", "1-D transposed convolution"},
      {"node/test_convtranspose_3d", "3-D transposed convolution"},
      {"node/test_convtranspose_autopad_same", "auto_pad = SAME_UPPER"},
      {"node/test_convtranspose_dilations", "dilations [2, 2]"},
      {"node/test_convtranspose_kernel_shape", strides},
      {"node/test_convtranspose_output_shape", strides},
      {"node/test_convtranspose_pad", strides},
      {"node/test_convtranspose_pads", strides},
      {"node/test_convtranspose_with_kernel", strides},
      {"node/test_dropout_default_mask", "the mask output (bool)"},
      {"node/test_dropout_default_mask_ratio", "the mask output (bool)"},
      {"node/test_dropout_default_old", one_d},
      {"node/test_training_dropout", "training mode"},
      {"node/test_training_dropout_default", "training mode"},
      {"node/test_training_dropout_default_mask", "training mode"},
      {"node/test_training_dropout_mask", "training mode"},
      {"node/test_training_dropout_zero_ratio", "training mode"},
      {"node/test_training_dropout_zero_ratio_mask", "training mode"},
      {"node/test_flatten_axis0", reshape},
      {"node/test_flatten_axis1", reshape},
      {"node/test_flatten_axis2", reshape},
      {"node/test_flatten_axis3", reshape},
      {"node/test_flatten_default_axis", reshape},
      {"node/test_flatten_negative_axis1", reshape},
      {"node/test_flatten_negative_axis2", reshape},
      {"node/test_flatten_negative_axis3", reshape},
      {"node/test_flatten_negative_axis4", reshape},
      {"node/test_gemm_all_attributes", "transA = 1"},
      {"node/test_gemm_transposeA", "transA = 1"},
      {"node/test_gemm_default_matrix_bias", "a [3, 4] matrix bias (one row per batch row)"},
      {"node/test_matmul_3d", "batched MatMul"},
      {"node/test_matmul_4d", "batched MatMul"},
      {"node/test_matmulinteger", integer},
      {"node/test_reshape_allowzero_reordered", reshape},
      {"node/test_reshape_extended_dims", reshape},
      {"node/test_reshape_negative_dim", reshape},
      {"node/test_reshape_negative_extended_dims", reshape},
      {"node/test_reshape_one_dim", reshape},
      {"node/test_reshape_reduced_dims", reshape},
      {"node/test_reshape_reordered_all_dims", reshape},
      {"node/test_reshape_reordered_last_dims", reshape},
      {"node/test_reshape_zero_and_negative_dim", reshape},
      {"node/test_reshape_zero_dim", reshape},
      {"node/test_sigmoid_example", one_d},
      {"pytorch-converted/test_BatchNorm1d_3d_input_eval", "batch norm of a 3-D [N, C, L] input"},
      {"pytorch-converted/test_BatchNorm3d_eval", "batch norm of a 5-D input"},
      {"pytorch-converted/test_BatchNorm3d_momentum_eval", "batch norm of a 5-D input"},
      {"pytorch-converted/test_Conv1d", "1-D convolution"},
      {"pytorch-converted/test_Conv1d_dilated", "1-D convolution"},
      {"pytorch-converted/test_Conv1d_groups", "1-D convolution"},
      {"pytorch-converted/test_Conv1d_pad1", "1-D convolution"},
      {"pytorch-converted/test_Conv1d_pad1size1", "1-D convolution"},
      {"pytorch-converted/test_Conv1d_pad2", "1-D convolution"},
      {"pytorch-converted/test_Conv1d_pad2size1", "1-D convolution"},
      {"pytorch-converted/test_Conv1d_stride", "1-D convolution"},
      {"pytorch-converted/test_Conv2d", "non-square 3x2 kernel"},
      {"pytorch-converted/test_Conv2d_dilated", "dilations [2, 2]"},
      {"pytorch-converted/test_Conv2d_groups", "non-square 3x2 kernel"},
      {"pytorch-converted/test_Conv2d_groups_thnn", "non-square 3x2 kernel"},
      {"pytorch-converted/test_Conv2d_no_bias", "non-square 3x2 kernel"},
      {"pytorch-converted/test_Conv3d", "3-D convolution"},
      {"pytorch-converted/test_Conv3d_dilated", "3-D convolution"},
      {"pytorch-converted/test_Conv3d_dilated_strided", "3-D convolution"},
      {"pytorch-converted/test_Conv3d_groups", "3-D convolution"},
      {"pytorch-converted/test_Conv3d_no_bias", "3-D convolution"},
      {"pytorch-converted/test_Conv3d_stride", "3-D convolution"},
      {"pytorch-converted/test_Conv3d_stride_padding", "3-D convolution"},
      {"pytorch-converted/test_ConvTranspose2d", "unequal strides [3, 2]"},
      {"pytorch-converted/test_ConvTranspose2d_no_bias", "unequal strides [2, 3]"},
  };
  return table;
}

struct Case {
  std::string op, id;  // id: "<folder>/<test name>"
  fs::path dir;
};

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  const fs::path root = testdata_dir();
  if (root.empty()) return cases;
  for (const OpGroup& g : op_groups()) {
    const fs::path folder = root / g.folder;
    if (!fs::is_directory(folder)) continue;
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(folder)) {
      const std::string name = entry.path().filename().string();
      if (!fs::exists(entry.path() / "model.onnx")) continue;
      bool mine = false;
      for (const char* p : g.prefixes) mine = mine || name.rfind(p, 0) == 0;
      // An earlier group took it (test_convtranspose* before test_conv*).
      for (const Case& c : cases) mine = mine && c.id != std::string(g.folder) + "/" + name;
      if (mine) names.push_back(name);
    }
    std::sort(names.begin(), names.end());
    for (const std::string& name : names)
      cases.push_back({g.op, std::string(g.folder) + "/" + name, folder / name});
  }
  return cases;
}

// How gtest prints a case: its folder and name.
void PrintTo(const Case& c, std::ostream* os) { *os << c.id; }

enum class Outcome { kPassed, kSkipped, kFailed };

struct CaseResult {
  Outcome outcome = Outcome::kPassed;
  std::string detail;
};

std::vector<fs::path> numbered(const fs::path& dir, const std::string& prefix) {
  std::vector<fs::path> files;
  for (int k = 0; fs::exists(dir / (prefix + std::to_string(k) + ".pb")); ++k)
    files.push_back(dir / (prefix + std::to_string(k) + ".pb"));
  return files;
}

// Compares one output; empty when it matches.
std::string compare(const std::string& name, const emt::Tensor& got, const emt::NamedTensor& want,
                    const emt::Shape& onnx_engine_shape) {
  // The engine's shape may drop the trailing 1, 1 of a GlobalAveragePool output (the importer
  // says so in engine_shape); the values are the same.
  if (got.shape != want.shape && got.shape != onnx_engine_shape)
    return "output '" + name + "': the engine gives " + emt::shape_str(got.shape) + ", expected " +
           emt::shape_str(want.shape);
  emt::Shape trimmed = want.shape;
  while (trimmed.size() > got.shape.size() && trimmed.back() == 1) trimmed.pop_back();
  if (got.shape != want.shape && got.shape != trimmed)
    return "output '" + name + "': the engine gives " + emt::shape_str(got.shape) + ", expected " +
           emt::shape_str(want.shape);
  if (got.numel() != static_cast<int64_t>(want.data.size()))
    return "output '" + name + "': " + std::to_string(got.numel()) + " values, expected " +
           std::to_string(want.data.size());
  int64_t bad = 0, worst = -1;
  double worst_excess = 0;
  for (size_t i = 0; i < want.data.size(); ++i) {
    const double g = got.data[i], w = want.data[i];
    const double diff = std::fabs(g - w), allowed = kAtol + kRtol * std::fabs(w);
    if (!(diff <= allowed)) {
      ++bad;
      if (worst < 0 || !(diff - allowed <= worst_excess)) {
        worst = static_cast<int64_t>(i);
        worst_excess = diff - allowed;
      }
    }
  }
  if (bad == 0) return "";
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "output '%s': %lld of %zu values differ beyond rtol %g / atol %g; worst at %lld: "
                "engine %.9g, expected %.9g",
                name.c_str(), static_cast<long long>(bad), want.data.size(), kRtol, kAtol,
                static_cast<long long>(worst), got.data[worst], want.data[worst]);
  return buf;
}

// Imports the case with one data set's weights and runs every data set that shares them.
CaseResult run_data_set(const Case& c, const std::string& model_bytes,
                        const onnx::ModelProto& model, const fs::path& set) {
  // The graph inputs fed at run time, in order; input_<k>.pb is the k-th.
  std::vector<std::string> runtime_inputs;
  {
    std::vector<std::string> initializers;
    for (const auto& t : model.graph().initializer()) initializers.push_back(t.name());
    for (const auto& in : model.graph().input())
      if (std::find(initializers.begin(), initializers.end(), in.name()) == initializers.end())
        runtime_inputs.push_back(in.name());
  }
  const std::vector<fs::path> input_files = numbered(set, "input_");
  const std::vector<fs::path> output_files = numbered(set, "output_");
  if (input_files.size() != runtime_inputs.size())
    return {Outcome::kFailed, set.string() + ": " + std::to_string(input_files.size()) +
                                  " input files for " + std::to_string(runtime_inputs.size()) +
                                  " graph inputs"};
  if (output_files.size() != static_cast<size_t>(model.graph().output_size()))
    return {Outcome::kFailed, set.string() + ": " + std::to_string(output_files.size()) +
                                  " output files for " +
                                  std::to_string(model.graph().output_size()) + " outputs"};

  const std::vector<std::string> weights = emt::onnx_weight_inputs(model_bytes);
  emt::OnnxImportOptions opt;
  opt.source = c.id + "/model.onnx";
  std::map<std::string, std::string> fed;  // runtime inputs -> their tensor bytes
  for (size_t k = 0; k < runtime_inputs.size(); ++k) {
    const std::string bytes = emt::read_file(input_files[k]);
    if (std::find(weights.begin(), weights.end(), runtime_inputs[k]) != weights.end())
      opt.constant_inputs[runtime_inputs[k]] = bytes;
    else
      fed[runtime_inputs[k]] = bytes;
  }

  const auto scope = out_of_scope().find(c.id);
  emt::OnnxImport imported;
  try {
    imported = emt::import_onnx_bytes(model_bytes, opt);
  } catch (const emt::OnnxUnsupportedError& e) {
    if (scope != out_of_scope().end())
      return {Outcome::kSkipped,
              "out of scope: " + scope->second + " (importer: " + e.what() + ")"};
    return {Outcome::kFailed, std::string("the importer refuses a case in scope: ") + e.what()};
  } catch (const std::exception& e) {
    return {Outcome::kFailed, std::string("import failed: ") + e.what()};
  }
  if (scope != out_of_scope().end())
    return {Outcome::kFailed, "listed as out of scope (" + scope->second +
                                  ") but imports: run it and remove it from kOutOfScope"};

  try {
    const emt::GraphFile file = emt::parse_graph_text(imported.toml, imported.toml_name);
    std::vector<emt::NamedTensor> inputs;
    int64_t batch = 0;
    for (const emt::OnnxImportIo& in : imported.inputs) {
      auto it = fed.find(in.onnx_name);
      if (it == fed.end())
        return {Outcome::kFailed, "no data for the imported input '" + in.onnx_name + "'"};
      inputs.push_back(emt::onnx_float_tensor(it->second, "input '" + in.onnx_name + "'"));
      batch = inputs.back().shape.at(0);
    }
    for (emt::Backend backend : {emt::Backend::kReference, emt::Backend::kOnednn}) {
      emt::Model engine(file, 0, backend);
      engine.params().load_tensors(imported.weights, "imported weights");
      emt::Executor& ex = engine.executor(batch, emt::Mode::kEval);
      for (size_t i = 0; i < inputs.size(); ++i) {
        emt::Tensor t = ex.value(imported.inputs[i].engine_name);
        if (t.shape != inputs[i].shape)
          return {Outcome::kFailed, "input '" + imported.inputs[i].onnx_name + "' is " +
                                        emt::shape_str(inputs[i].shape) + ", the engine takes " +
                                        emt::shape_str(t.shape)};
        std::copy(inputs[i].data.begin(), inputs[i].data.end(), t.data);
      }
      ex.forward();
      for (size_t k = 0; k < output_files.size(); ++k) {
        const emt::OnnxImportIo& out = imported.outputs.at(k);
        const emt::NamedTensor want =
            emt::onnx_float_tensor(emt::read_file(output_files[k]), output_files[k].string());
        const emt::Tensor got = ex.value(ex.program().outputs.at(out.onnx_name));
        emt::Shape engine_shape = out.engine_shape;
        engine_shape[0] = batch;
        const std::string diff = compare(out.onnx_name, got, want, engine_shape);
        if (!diff.empty())
          return {Outcome::kFailed, std::string(emt::backend_name(backend)) + " backend, " +
                                        set.string() + ": " + diff + "\n--- imported graph ---\n" +
                                        imported.toml};
      }
    }
  } catch (const std::exception& e) {
    return {Outcome::kFailed, std::string("running the imported graph: ") + e.what() +
                                  "\n--- imported graph ---\n" + imported.toml};
  }
  return {Outcome::kPassed, ""};
}

CaseResult run_case(const Case& c) {
  const fs::path model_path = c.dir / "model.onnx";
  const std::string bytes = emt::read_file(model_path);
  onnx::ModelProto model;
  if (!model.ParseFromString(bytes))
    return {Outcome::kFailed, model_path.string() + " does not parse"};
  std::vector<fs::path> sets;
  for (const auto& entry : fs::directory_iterator(c.dir))
    if (entry.is_directory() && entry.path().filename().string().rfind("test_data_set_", 0) == 0)
      sets.push_back(entry.path());
  std::sort(sets.begin(), sets.end());
  if (sets.empty()) return {Outcome::kFailed, c.dir.string() + " has no test_data_set_*"};
  for (const fs::path& set : sets) {
    CaseResult r = run_data_set(c, bytes, model, set);
    if (r.outcome != Outcome::kPassed) return r;
  }
  return {Outcome::kPassed, ""};
}

std::string param_name(const ::testing::TestParamInfo<Case>& info) {
  std::string s = info.param.id;
  for (char& ch : s)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return s;
}

class OnnxConformance : public ::testing::TestWithParam<Case> {
 protected:
  static void SetUpTestSuite() { emt::init_threading(2); }
};

TEST_P(OnnxConformance, Case) {
  const Case& c = GetParam();
  if (c.dir.empty())
    EMT_SKIP_MISSING(
        "ONNX's backend test data is not installed (apt-get install libonnx-testdata; "
        "tools/setup.sh does), or set EMT_ONNX_TESTDATA_DIR");
  const CaseResult r = run_case(c);
  if (r.outcome == Outcome::kSkipped) GTEST_SKIP() << r.detail;
  if (r.outcome == Outcome::kFailed) FAIL() << c.id << ": " << r.detail;
}

// With no test data, one placeholder case that skips saying why.
std::vector<Case> cases_or_placeholder() {
  std::vector<Case> cases = all_cases();
  if (cases.empty()) cases.push_back({"none", "testdata_missing", {}});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Onnx, OnnxConformance, ::testing::ValuesIn(cases_or_placeholder()),
                         param_name);

// Every case in one process: the per-op table for the README, and no case failing.
TEST(OnnxConformanceSummary, PerOp) {
  emt::init_threading(2);
  const std::vector<Case> cases = all_cases();
  if (cases.empty()) EMT_SKIP_MISSING("ONNX's backend test data is not installed");
  struct Counts {
    int passed = 0, skipped = 0, total = 0;
  };
  std::vector<std::pair<std::string, Counts>> table;  // in op_groups order
  std::map<std::string, int> skip_reasons;
  Counts all;
  for (const Case& c : cases) {
    const std::string key = c.op + (c.id.rfind("node/", 0) == 0 ? "" : " (pytorch-converted)");
    auto it =
        std::find_if(table.begin(), table.end(), [&](const auto& e) { return e.first == key; });
    if (it == table.end()) it = table.insert(table.end(), {key, {}});
    const CaseResult r = run_case(c);
    ++it->second.total;
    ++all.total;
    if (r.outcome == Outcome::kPassed) {
      ++it->second.passed;
      ++all.passed;
    } else if (r.outcome == Outcome::kSkipped) {
      ++it->second.skipped;
      ++all.skipped;
      ++skip_reasons[out_of_scope().at(c.id)];
    } else {
      ADD_FAILURE() << c.id << ": " << r.detail;
    }
  }
  std::printf("ONNX import conformance (%s; rtol %g, atol %g), passed / skipped / total:\n",
              testdata_dir().c_str(), kRtol, kAtol);
  for (const auto& [op, n] : table)
    std::printf("  %-40s %3d / %3d / %3d\n", op.c_str(), n.passed, n.skipped, n.total);
  std::printf("  %-40s %3d / %3d / %3d\n", "all", all.passed, all.skipped, all.total);
  std::printf("skipped, by reason:\n");
  for (const auto& [reason, n] : skip_reasons) std::printf("  %3d  %s\n", n, reason.c_str());
}

}  // namespace

#endif  // EMT_ONNX_CONFORMANCE
