// The TFLite importer end to end: the FlatBuffers reader on the real MobileNetV1 files, the
// import into the graphs, and the engine's outputs against golden values computed
// independently from the same dequantised weights (../shared/models/golden). Truncated and
// corrupt files must give a TfliteError, never a crash. Skips when ../shared/models is absent.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "engine/dsl/parser.h"
#include "engine/import/init_weights.h"
#include "engine/import/tflite.h"
#include "engine/io/safetensors.h"
#include "engine/runtime/executor.h"
#include "engine/runtime/model.h"
#include "engine/runtime/threading.h"
#include "tests/engine/temp_dir_test.h"
#include "tests/skip_or_fail.h"

namespace {

namespace fs = std::filesystem;
using emt::Mode;
using emt::Model;

fs::path source_dir() {
  const char* source = std::getenv("EMT_SOURCE_DIR");
  return source && *source ? fs::path(source) : fs::current_path();
}

// EMT_SHARED_DIR, else <source>/../shared.
fs::path models_dir() {
  const char* shared = std::getenv("EMT_SHARED_DIR");
  return (shared && *shared ? fs::path(shared) : source_dir() / ".." / "shared") / "models";
}

constexpr const char* kClassifier = "mobilenet_v1_0.75_192_quant.tflite";
constexpr const char* kExtractor = "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite";

#define REQUIRE_MODELS()                                                                          \
  do {                                                                                            \
    if (!fs::exists(models_dir() / kClassifier) || !fs::exists(models_dir() / kExtractor))        \
      EMT_SKIP_MISSING("no TFLite models in "                                                     \
                       << models_dir() << " (set EMT_SHARED_DIR to the folder holding models/)"); \
  } while (0)

std::vector<uint8_t> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<float> read_f32(const fs::path& path, size_t count) {
  const std::vector<uint8_t> bytes = read_bytes(path);
  EXPECT_EQ(bytes.size(), count * 4) << path;
  std::vector<float> out(bytes.size() / 4);
  std::memcpy(out.data(), bytes.data(), out.size() * 4);
  return out;
}

// [1, H, W, C] -> [1, C, H, W].
std::vector<float> nhwc_to_nchw(const std::vector<float>& x, int64_t h, int64_t w, int64_t c) {
  std::vector<float> out(x.size());
  for (int64_t y = 0; y < h; ++y)
    for (int64_t i = 0; i < w; ++i)
      for (int64_t ch = 0; ch < c; ++ch) out[(ch * h + y) * w + i] = x[(y * w + i) * c + ch];
  return out;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    worst = std::max(worst, std::abs(double(a[i]) - double(b[i])));
  return worst;
}

std::vector<float> values(emt::Executor& ex, const std::string& name) {
  const emt::Tensor t = ex.value(name);
  return {t.data, t.data + t.numel()};
}

class TfliteImportTest : public emt::test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    emt::init_threading(2);
  }
};

TEST_F(TfliteImportTest, ReadsTheClassifierStructure) {
  REQUIRE_MODELS();
  const emt::TfliteModel m = emt::read_tflite(models_dir() / kClassifier);
  EXPECT_EQ(m.version, 3u);
  EXPECT_EQ(m.subgraph_count, 1u);
  // 27 backbone convolutions, the 1x1 logits convolution, the pool, reshape and softmax.
  ASSERT_EQ(m.operators.size(), 31u);
  int conv = 0, depthwise = 0;
  for (const emt::TfliteOperator& op : m.operators) {
    conv += op.builtin == emt::tflite_op::kConv2d;
    depthwise += op.builtin == emt::tflite_op::kDepthwiseConv2d;
  }
  EXPECT_EQ(conv, 15);
  EXPECT_EQ(depthwise, 13);
  EXPECT_EQ(m.operators[27].builtin, emt::tflite_op::kAveragePool2d);
  EXPECT_EQ(m.operators[27].padding, emt::TflitePadding::kValid);
  EXPECT_EQ(m.operators[27].filter_h, 6);
  EXPECT_EQ(m.operators[28].builtin, emt::tflite_op::kConv2d);
  EXPECT_EQ(m.operators[29].builtin, emt::tflite_op::kReshape);
  EXPECT_EQ(m.operators[30].builtin, emt::tflite_op::kSoftmax);

  const emt::TfliteOperator& stem = m.operators[0];
  EXPECT_EQ(stem.padding, emt::TflitePadding::kSame);
  EXPECT_EQ(stem.stride_h, 2);
  EXPECT_EQ(stem.stride_w, 2);
  EXPECT_EQ(stem.activation, emt::TfliteActivation::kRelu6);

  ASSERT_EQ(m.inputs.size(), 1u);
  const emt::TfliteTensor& input = m.tensors[m.inputs[0]];
  EXPECT_EQ(input.shape, (std::vector<int32_t>{1, 192, 192, 3}));
  EXPECT_EQ(input.type, static_cast<int>(emt::TfliteType::kUint8));
  ASSERT_EQ(input.quantization.scale.size(), 1u);
  EXPECT_EQ(input.quantization.scale[0], 0.0078125f);
  EXPECT_EQ(input.quantization.zero_point, (std::vector<int64_t>{128}));

  const std::vector<emt::TfliteConv> convs =
      emt::tflite_convolutions(m, (models_dir() / kClassifier).string());
  ASSERT_EQ(convs.size(), 28u);
  // The 0.75 widths, as the file stores them.
  const std::vector<int64_t> widths = {24,  48,  96,  96,  192, 192, 384,
                                       384, 384, 384, 384, 384, 768, 768};
  EXPECT_EQ(convs[0].weight_shape, (emt::Shape{24, 3, 3, 3}));
  for (size_t b = 1; b < widths.size(); ++b) {
    EXPECT_EQ(convs[2 * b - 1].weight_shape, (emt::Shape{widths[b - 1], 1, 3, 3})) << "ds" << b;
    EXPECT_EQ(convs[2 * b - 1].groups, widths[b - 1]) << "ds" << b;
    EXPECT_EQ(convs[2 * b].weight_shape, (emt::Shape{widths[b], widths[b - 1], 1, 1})) << "ds" << b;
  }
  EXPECT_EQ(convs[27].weight_shape, (emt::Shape{1001, 768, 1, 1}));
  EXPECT_EQ(convs[27].activation, emt::TfliteActivation::kNone);
  for (const emt::TfliteConv& c : convs) {
    EXPECT_EQ(c.bias.size(), static_cast<size_t>(c.weight_shape[0])) << c.weight_name;
    EXPECT_LT(c.bias_scale_mismatch, 1e-4) << c.weight_name;
  }
}

// Dequantisation and the OHWI -> OIHW transpose, element by element on the stem.
TEST_F(TfliteImportTest, DequantisesAndTransposesWeights) {
  REQUIRE_MODELS();
  const std::string path = (models_dir() / kClassifier).string();
  const emt::TfliteModel m = emt::read_tflite(path);
  const emt::TfliteOperator& stem = m.operators[0];
  const emt::TfliteTensor& w = m.tensors[stem.inputs[1]];
  ASSERT_EQ(w.shape, (std::vector<int32_t>{24, 3, 3, 3}));  // OHWI
  ASSERT_EQ(w.type, static_cast<int>(emt::TfliteType::kUint8));
  const std::vector<uint8_t>& q = m.buffers[w.buffer];
  const double scale = w.quantization.scale[0];
  const int64_t zero = w.quantization.zero_point[0];
  const emt::TfliteConv c = emt::tflite_convolutions(m, path)[0];
  for (int o = 0; o < 24; ++o)
    for (int y = 0; y < 3; ++y)
      for (int x = 0; x < 3; ++x)
        for (int i = 0; i < 3; ++i) {
          const float want = static_cast<float>(scale * (q[((o * 3 + y) * 3 + x) * 3 + i] - zero));
          ASSERT_EQ(c.weight[((o * 3 + i) * 3 + y) * 3 + x], want) << o << " " << y << x << i;
        }
  // The bias: int32 with scale input scale x weight scale.
  const emt::TfliteTensor& b = m.tensors[stem.inputs[2]];
  const emt::TfliteTensor& in = m.tensors[stem.inputs[0]];
  int32_t q0;
  std::memcpy(&q0, m.buffers[b.buffer].data(), 4);
  EXPECT_NEAR(c.bias[0], double(q0) * in.quantization.scale[0] * scale, 1e-6 * std::abs(c.bias[0]));

  // Depthwise 1HWC -> C1HW on ds1.dw.
  const emt::TfliteTensor& dw = m.tensors[m.operators[1].inputs[1]];
  ASSERT_EQ(dw.shape, (std::vector<int32_t>{1, 3, 3, 24}));
  const emt::TfliteConv d = emt::tflite_convolutions(m, path)[1];
  const std::vector<uint8_t>& dq = m.buffers[dw.buffer];
  for (int ch = 0; ch < 24; ++ch)
    for (int t = 0; t < 9; ++t)
      ASSERT_EQ(d.weight[ch * 9 + t],
                static_cast<float>(double(dw.quantization.scale[0]) *
                                   (dq[t * 24 + ch] - dw.quantization.zero_point[0])));
}

// The 0.75 classifier imported into graphs/mobilenet_v1_075_classifier.toml reproduces the
// golden logits of bird.bmp, whose top-1 is class 20 (chickadee).
TEST_F(TfliteImportTest, ClassifierMatchesGoldenLogits) {
  REQUIRE_MODELS();
  const emt::GraphFile file =
      emt::parse_graph_file(source_dir() / "graphs" / "mobilenet_v1_075_classifier.toml");
  Model model(file, 1, emt::Backend::kReference);
  const fs::path weights = dir_ / "classifier.safetensors";
  const emt::ImportReport report =
      emt::import_tflite_backbone(models_dir() / kClassifier, model, weights);
  EXPECT_EQ(report.layers, 28);
  // Every parameter comes from the file: 27 conv weights, 27 x 4 batch-norm tensors, and the
  // logits layer's weight and bias.
  EXPECT_EQ(report.matched.size(), 27u + 27u * 4u + 2u) << report.summary();
  EXPECT_TRUE(report.initialised.empty()) << report.summary();
  EXPECT_TRUE(report.notes.empty()) << report.summary();
  EXPECT_NEAR(report.norm_mean, 128.0 / 255.0, 1e-12);
  EXPECT_NEAR(report.norm_std, 128.0 / 255.0, 1e-12);
  EXPECT_EQ(file.config.get_float("data.norm_mean"), report.norm_mean);

  const emt::SafetensorsFile st = emt::read_safetensors(weights);
  EXPECT_EQ(st.metadata.at("source"), kClassifier);
  model.params().load_tensors(st, weights.string());

  const fs::path golden = models_dir() / "golden";
  const std::vector<float> input = nhwc_to_nchw(
      read_f32(golden / "mobilenet_v1_0.75_192_quant_bird_input.f32", 192 * 192 * 3), 192, 192, 3);
  const std::vector<float> want =
      read_f32(golden / "mobilenet_v1_0.75_192_quant_bird_logits.f32", 1001);

  for (bool fused : {true, false}) {
    model.set_inference_fusion(fused);
    emt::Executor& ex = model.executor(1, Mode::kEval);
    std::copy(input.begin(), input.end(), ex.value("image").data);
    ex.forward();
    const std::vector<float> got = values(ex, "logits");
    const double diff = max_abs_diff(got, want);
    // Observed: 1.7e-5, fused and unfused alike (float32 accumulation against the golden's
    // float64). Fusion folds the identity batch norms back into the convolutions exactly.
    EXPECT_LT(diff, 1e-3) << (fused ? "fused" : "unfused");
    std::cout << "[ golden   ] 0.75_192 logits, reference backend " << (fused ? "fused" : "unfused")
              << ": max |diff| = " << diff << "\n";
    EXPECT_EQ(std::max_element(got.begin(), got.end()) - got.begin(), 20);  // chickadee
  }
}

// The same import on the oneDNN backend (blocked layouts, asymmetric padding_r).
TEST_F(TfliteImportTest, ClassifierMatchesGoldenLogitsOnOnednn) {
  REQUIRE_MODELS();
  const emt::GraphFile file =
      emt::parse_graph_file(source_dir() / "graphs" / "mobilenet_v1_075_classifier.toml");
  Model model(file, 1, emt::Backend::kOnednn);
  std::vector<emt::NamedTensor> tensors;
  const std::string path = (models_dir() / kClassifier).string();
  emt::import_tflite_tensors(emt::read_tflite(path), path, model, tensors);
  emt::SafetensorsFile st;
  st.tensors = tensors;
  model.params().load_tensors(st, "import");
  const fs::path golden = models_dir() / "golden";
  const std::vector<float> input = nhwc_to_nchw(
      read_f32(golden / "mobilenet_v1_0.75_192_quant_bird_input.f32", 192 * 192 * 3), 192, 192, 3);
  const std::vector<float> want =
      read_f32(golden / "mobilenet_v1_0.75_192_quant_bird_logits.f32", 1001);
  emt::Executor& ex = model.executor(1, Mode::kEval);
  std::copy(input.begin(), input.end(), ex.value("image").data);
  ex.forward();
  const std::vector<float> got = values(ex, "logits");
  const double diff = max_abs_diff(got, want);
  EXPECT_LT(diff, 1e-3);
  std::cout << "[ golden   ] 0.75_192 logits, onednn backend: max |diff| = " << diff << "\n";
  EXPECT_EQ(std::max_element(got.begin(), got.end()) - got.begin(), 20);
}

// The 1.0 embedding extractor imported into graphs/emtnet_pretrained.toml: the backbone's
// output at 224 matches the golden last convolution and its 7x7 mean the golden embedding.
TEST_F(TfliteImportTest, EmtNetPretrainedBackboneMatchesGoldenEmbedding) {
  REQUIRE_MODELS();
  emt::GraphFile file = emt::parse_graph_file(source_dir() / "graphs" / "emtnet_pretrained.toml",
                                              {"data.input_size=224"});
  // Public outputs live to the end of the forward pass (others may share memory).
  file.graph.outputs.push_back({"last_conv", "backbone", {}});
  file.graph.outputs.push_back({"embedding", "cls_head.gap", {}});
  Model model(file, 1, emt::Backend::kReference);
  const fs::path weights = dir_ / "emtnet_pretrained.safetensors";
  const emt::ImportReport report =
      emt::import_tflite_backbone(models_dir() / kExtractor, model, weights);
  EXPECT_EQ(report.layers, 27);
  EXPECT_EQ(report.matched.size(), 27u * 5u) << report.summary();
  EXPECT_TRUE(report.notes.empty()) << report.summary();
  for (const emt::ImportedTensor& t : report.matched)
    EXPECT_EQ(t.param.rfind("backbone.", 0), 0u) << t.param;
  // The heads keep their initialisation.
  ASSERT_FALSE(report.initialised.empty());
  for (const std::string& name : report.initialised)
    EXPECT_NE(name.rfind("backbone.", 0), 0u) << name << " was not imported";
  EXPECT_NE(std::find(report.initialised.begin(), report.initialised.end(), "cls_head.fc1.weight"),
            report.initialised.end());
  EXPECT_NE(std::find(report.initialised.begin(), report.initialised.end(),
                      "seg.dec4.reduce.conv.weight"),
            report.initialised.end());

  // The file holds the imported tensors only; the heads keep the model's initialisation.
  const emt::SafetensorsFile st = emt::read_safetensors(weights);
  EXPECT_EQ(st.tensors.size(), report.matched.size());
  EXPECT_EQ(st.find("seg.dec4.reduce.conv.weight"), nullptr);
  EXPECT_EQ(st.find("backbone.ds3.pw.bn.gamma")->data, std::vector<float>(128, 1.0f));
  const std::vector<float> head = model.params().at("seg.dec4.reduce.conv.weight").value;
  const emt::InitWeightsReport loaded =
      emt::load_initial_weights(model.params(), st, weights.string());
  EXPECT_EQ(loaded.loaded.size(), report.matched.size());
  EXPECT_EQ(loaded.kept, report.initialised);
  EXPECT_EQ(model.params().at("seg.dec4.reduce.conv.weight").value, head);

  const fs::path golden = models_dir() / "golden";
  const std::string stem = "mobilenet_v1_1.0_224_quant_embedding_extractor_bird";
  const std::vector<float> input =
      nhwc_to_nchw(read_f32(golden / (stem + "_input.f32"), 224 * 224 * 3), 224, 224, 3);
  const std::vector<float> last_conv =
      nhwc_to_nchw(read_f32(golden / (stem + "_last_conv_7x7.f32"), 7 * 7 * 1024), 7, 7, 1024);
  const std::vector<float> embedding = read_f32(golden / (stem + "_embedding.f32"), 1024);

  emt::Executor& ex = model.executor(1, Mode::kEval);
  std::copy(input.begin(), input.end(), ex.value("image").data);
  ex.forward();
  const double conv_diff = max_abs_diff(values(ex, "backbone"), last_conv);
  const double emb_diff = max_abs_diff(values(ex, "cls_head.gap"), embedding);
  // Observed: 3.6e-5 on the 7x7 map (values up to 6), 4.8e-6 on the embedding.
  EXPECT_LT(conv_diff, 1e-3);
  EXPECT_LT(emb_diff, 1e-3);
  std::cout << "[ golden   ] 1.0_224 backbone, reference backend: max |diff| last conv = "
            << conv_diff << ", embedding = " << emb_diff << "\n";
}

// Importing into a graph of the wrong semantics works, but says where it differs; importing
// into a graph of the wrong structure fails naming both layers.
TEST_F(TfliteImportTest, ReportsSemanticDifferencesAndRejectsOtherStructures) {
  REQUIRE_MODELS();
  const std::string extractor = (models_dir() / kExtractor).string();
  const emt::TfliteModel m = emt::read_tflite(extractor);
  {
    const Model plain(
        emt::parse_graph_file(source_dir() / "graphs" / "emtnet.toml", {"data.input_size=224"}), 1);
    std::vector<emt::NamedTensor> tensors;
    const emt::ImportReport r = emt::import_tflite_tensors(m, extractor, plain, tensors);
    const std::string text = r.summary();
    EXPECT_NE(text.find("pad_mode = \"same_tf\""), std::string::npos) << text;
    EXPECT_NE(text.find("the file applies RELU6, the graph relu (27 layers"), std::string::npos)
        << text;
  }
  {
    const Model other(
        emt::parse_graph_file(source_dir() / "graphs" / "mobilenet_v1_075_classifier.toml"), 1);
    std::vector<emt::NamedTensor> tensors;
    try {
      emt::import_tflite_tensors(m, extractor, other, tensors);
      ADD_FAILURE() << "importing width 1.0 into width 0.75 did not throw";
    } catch (const emt::TfliteError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("backbone.stem.conv"), std::string::npos) << what;
      EXPECT_NE(what.find("[32,3,3,3]"), std::string::npos) << what;
      EXPECT_NE(what.find("[24,3,3,3]"), std::string::npos) << what;
    }
  }
}

// Every truncation and many corruptions of a real file: a TfliteError or a successful parse,
// never a crash, a hang or another exception.
TEST_F(TfliteImportTest, TruncatedAndCorruptFilesGiveErrors) {
  REQUIRE_MODELS();
  const std::vector<uint8_t> bytes = read_bytes(models_dir() / kClassifier);
  ASSERT_GT(bytes.size(), 1000u);
  const std::vector<emt::TfliteConv> whole =
      emt::tflite_convolutions(emt::parse_tflite(bytes, "x.tflite"), "x.tflite");
  // The convolutions when the bytes parse, else nothing (after checking the error).
  const auto attempt = [&](const std::vector<uint8_t>& data,
                           const std::string& what) -> std::optional<std::vector<emt::TfliteConv>> {
    try {
      return emt::tflite_convolutions(emt::parse_tflite(data, "x.tflite"), "x.tflite");
    } catch (const emt::TfliteError& e) {
      EXPECT_EQ(std::string(e.what()).rfind("x.tflite: ", 0), 0u) << what << ": " << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << what << ": not a TfliteError: " << e.what();
    }
    return std::nullopt;
  };
  // Truncations. The file ends with an appended label archive (TFLite metadata) that the
  // FlatBuffer does not reach: cutting into it must change nothing, cutting anything else must
  // fail.
  const char zip[] = {'P', 'K', 3, 4};
  const size_t archive = std::search(bytes.begin(), bytes.end(), zip, zip + 4) - bytes.begin();
  ASSERT_LT(archive, bytes.size());
  ASSERT_GT(archive, bytes.size() - 32768);
  std::vector<size_t> lengths = {0, 3, 4, 7, 8, 12, 16, 64, 1000, bytes.size() / 2, archive};
  for (size_t n = archive - 1500; n < archive + 600; n += 41) lengths.push_back(n);
  for (size_t step = 1; step < bytes.size(); step += bytes.size() / 41) lengths.push_back(step);
  size_t shortest_parse = bytes.size();
  for (size_t n : lengths) {
    const std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + n);
    const auto convs = attempt(cut, "truncated to " + std::to_string(n));
    if (!convs) continue;
    shortest_parse = std::min(shortest_parse, n);
    ASSERT_EQ(convs->size(), whole.size()) << n;
    for (size_t i = 0; i < whole.size(); ++i) {
      ASSERT_EQ((*convs)[i].weight, whole[i].weight) << n;
      ASSERT_EQ((*convs)[i].bias, whole[i].bias) << n;
    }
  }
  EXPECT_LE(shortest_parse, archive);
  EXPECT_GT(shortest_parse, archive - 1500);
  for (size_t n : lengths) {
    if (n < shortest_parse) {
      EXPECT_FALSE(attempt(std::vector<uint8_t>(bytes.begin(), bytes.begin() + n), "again")) << n;
    }
  }
  try {
    emt::parse_tflite(std::vector<uint8_t>(bytes.begin(), bytes.begin() + bytes.size() / 2),
                      "half.tflite");
    ADD_FAILURE() << "half a file parsed";
  } catch (const emt::TfliteError& e) {
    EXPECT_NE(std::string(e.what()).find("truncated or corrupt"), std::string::npos) << e.what();
  }
  // Not a TFLite file at all.
  std::vector<uint8_t> other = bytes;
  std::memcpy(other.data() + 4, "ONNX", 4);
  try {
    emt::parse_tflite(other, "model.onnx");
    ADD_FAILURE() << "a wrong identifier parsed";
  } catch (const emt::TfliteError& e) {
    EXPECT_NE(std::string(e.what()).find("not a TFLite model"), std::string::npos) << e.what();
  }
  // Random corruption of the structure (the first 4 KiB and the last 16 KiB before the archive
  // hold the root, the vtables, the tensors and the operators; the middle is weight data) and
  // of anywhere.
  std::mt19937 rng(5);
  const size_t tail = archive - 16384;
  int failed = 0;
  for (int trial = 0; trial < 450; ++trial) {
    std::vector<uint8_t> bad = bytes;
    const int flips = 1 + trial % 4;
    for (int f = 0; f < flips; ++f) {
      size_t pos;
      switch (trial % 3) {
        case 0:
          pos = rng() % 4096;
          break;
        case 1:
          pos = tail + rng() % 16384;
          break;
        default:
          pos = rng() % bad.size();
      }
      bad[pos] = trial % 5 == 0 ? 0xff : static_cast<uint8_t>(rng());
    }
    failed += !attempt(bad, "corruption trial " + std::to_string(trial)).has_value();
  }
  EXPECT_GT(failed, 50);  // the structure is checked, not just read
}

// Operators whose tensors share buffers could make a small file decode to any multiple of
// itself: here the classifier's operators listed 40 times over (as 40 x as many operators naming
// the same weights would) are refused before their weights are decoded.
TEST_F(TfliteImportTest, SharedBuffersCannotDecodeToMoreThanTheFile) {
  REQUIRE_MODELS();
  emt::TfliteModel model = emt::parse_tflite(read_bytes(models_dir() / kClassifier), "x.tflite");
  const std::vector<emt::TfliteOperator> once = model.operators;
  for (int copy = 1; copy < 40; ++copy)
    model.operators.insert(model.operators.end(), once.begin(), once.end());
  try {
    emt::tflite_convolutions(model, "x.tflite");
    ADD_FAILURE() << "40 copies of every weight decoded";
  } catch (const emt::TfliteError& e) {
    EXPECT_NE(std::string(e.what()).find("over one per byte of the"), std::string::npos)
        << e.what();
  }
}

// Every MobileNetV1 file of ../shared/models reads, with its width multiplier's channels.
TEST_F(TfliteImportTest, ReadsEverySharedModel) {
  REQUIRE_MODELS();
  const std::vector<std::pair<std::string, int64_t>> files = {
      {"mobilenet_v1_0.25_128_quant.tflite", 8},
      {"mobilenet_v1_0.5_160_quant.tflite", 16},
      {kClassifier, 24},
      {kExtractor, 32},
  };
  for (const auto& [name, stem] : files) {
    const std::string path = (models_dir() / name).string();
    const std::vector<emt::TfliteConv> convs =
        emt::tflite_convolutions(emt::read_tflite(path), path);
    const bool classifier = name != kExtractor;
    ASSERT_EQ(convs.size(), classifier ? 28u : 27u) << name;
    EXPECT_EQ(convs[0].weight_shape, (emt::Shape{stem, 3, 3, 3})) << name;
    EXPECT_EQ(convs[26].weight_shape[0], 32 * stem) << name;  // 1024 x width
    if (classifier) {
      EXPECT_EQ(convs[27].weight_shape, (emt::Shape{1001, 32 * stem, 1, 1})) << name;
    }
  }
}

TEST_F(TfliteImportTest, MissingFileIsAnError) {
  EXPECT_THROW(emt::read_tflite(dir_ / "absent.tflite"), emt::TfliteError);
}

// Initial weights for training: only the tensors the file has, shapes checked first.
TEST_F(TfliteImportTest, InitialWeightsLoadOnlyWhatTheFileHas) {
  REQUIRE_MODELS();
  const emt::GraphFile file =
      emt::parse_graph_file(source_dir() / "graphs" / "emtnet_pretrained.toml");
  Model imported(file, 1);
  const fs::path weights = dir_ / "w.safetensors";
  emt::import_tflite_backbone(models_dir() / kExtractor, imported, weights);
  // The backbone, and a tensor the graph does not have (another graph's weights).
  emt::SafetensorsFile backbone = emt::read_safetensors(weights);
  backbone.tensors.push_back({"not_in_the_graph", {1}, {0.0f}});

  Model model(file, 7);
  const std::vector<float> head = model.params().at("cls_head.fc1.weight").value;
  const uint64_t version = model.params().version();
  const emt::InitWeightsReport r = emt::load_initial_weights(model.params(), backbone, "b");
  EXPECT_EQ(r.loaded.size(), 27u * 5u);
  EXPECT_EQ(r.unused, (std::vector<std::string>{"not_in_the_graph"}));
  EXPECT_EQ(r.loaded.size() + r.kept.size(), model.params().names().size());
  EXPECT_GT(model.params().version(), version);
  EXPECT_EQ(model.params().at("backbone.stem.conv.weight").value,
            backbone.find("backbone.stem.conv.weight")->data);
  EXPECT_EQ(model.params().at("cls_head.fc1.weight").value, head);

  // A wrong shape anywhere changes nothing: the first tensors stay at their initialisation.
  emt::SafetensorsFile wrong = backbone;
  emt::NamedTensor& last = wrong.tensors[wrong.tensors.size() - 2];
  last.shape = {1, emt::shape_numel(last.shape)};
  Model fresh(file, 7);
  const std::string first = wrong.tensors[0].name;
  const std::vector<float> before = fresh.params().at(first).value;
  EXPECT_NE(before, wrong.tensors[0].data);
  EXPECT_THROW(emt::load_initial_weights(fresh.params(), wrong, "wrong"), std::runtime_error);
  EXPECT_EQ(fresh.params().at(first).value, before);

  emt::SafetensorsFile none;
  none.tensors.push_back({"x", {1}, {0.0f}});
  EXPECT_THROW(emt::load_initial_weights(model.params(), none, "none"), std::runtime_error);
}

}  // namespace
