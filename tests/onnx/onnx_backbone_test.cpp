// engine/import/onnx_backbone: an ONNX model's convolutions as the initial weights of a graph.
#include "engine/import/onnx_backbone.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "engine/dsl/parser.h"
#include "engine/io/safetensors.h"
#include "engine/onnx/export.h"
#include "engine/runtime/model.h"
#include "tests/engine/temp_dir_test.h"
#include "tests/skip_or_fail.h"

namespace {

namespace fs = std::filesystem;
using emt::Model;

fs::path source_root() {
  const char* dir = std::getenv("EMT_SOURCE_DIR");
  return dir ? fs::path(dir) : fs::path(".");
}

fs::path shared_root() {
  if (const char* dir = std::getenv("EMT_SHARED_DIR")) return dir;
  return source_root() / ".." / "shared";
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// Seeded random weights with batch norm statistics far from the identity.
void randomize(Model& model, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> sym(-0.5f, 0.5f), pos(0.5f, 2.0f);
  emt::SafetensorsFile file;
  file.tensors = model.params().to_tensors();
  for (emt::NamedTensor& t : file.tensors) {
    const bool positive = t.name.ends_with(".running_var") || t.name.ends_with(".gamma");
    for (float& v : t.data) v = positive ? pos(gen) : sym(gen);
  }
  model.params().load_tensors(file, "random");
}

bool bit_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

class OnnxBackboneTest : public emt::test::TempDirTest {};

TEST_F(OnnxBackboneTest, SingleClfExportInitialisesEmtnetBackboneAndClassifier) {
  Model source(emt::parse_graph_file(source_root() / "graphs" / "single_clf.toml"), 1);
  randomize(source, 1234);
  const fs::path onnx = dir_ / "single_clf.onnx";
  emt::export_onnx(source, onnx);

  const Model target(emt::parse_graph_file(source_root() / "graphs" / "emtnet.toml"), 99);
  const fs::path out = dir_ / "init.safetensors";
  const emt::ImportReport report = emt::import_onnx_backbone(onnx, target, out);
  SCOPED_TRACE(report.summary());

  // 27 convolutions of the backbone, then fc1, fc2 and cls_logit: single_clf's node names are
  // emtnet's (backbone.*, cls_head.*, cls_logit), so the tensors map under the same names.
  EXPECT_EQ(report.layers, 30);
  const emt::SafetensorsFile written = emt::read_safetensors(out);
  std::map<std::string, const emt::NamedTensor*> by_name;
  for (const emt::NamedTensor& t : written.tensors) by_name[t.name] = &t;
  const std::vector<emt::NamedTensor> want = source.params().to_tensors();
  int backbone = 0;
  for (const emt::NamedTensor& t : want) {
    const auto it = by_name.find(t.name);
    ASSERT_NE(it, by_name.end()) << t.name << " was not written";
    EXPECT_EQ(it->second->shape, t.shape) << t.name;
    EXPECT_TRUE(bit_equal(it->second->data, t.data)) << t.name << " differs from the exported";
    backbone += starts_with(t.name, "backbone.");
  }
  EXPECT_EQ(backbone, 27 * 5);  // conv weight + gamma, beta, running_mean, running_var
  EXPECT_EQ(written.tensors.size(), want.size());
  EXPECT_EQ(written.metadata.at("imported_layers"), "30");

  // The segmentation branch is emtnet's own: left at its initialisation, and not written.
  const std::set<std::string> initialised(report.initialised.begin(), report.initialised.end());
  int seg = 0;
  for (const emt::NamedTensor& t : target.params().to_tensors()) {
    if (!starts_with(t.name, "seg.")) continue;
    ++seg;
    EXPECT_TRUE(initialised.count(t.name)) << t.name;
    EXPECT_FALSE(by_name.count(t.name)) << t.name;
  }
  EXPECT_GT(seg, 0);
  EXPECT_EQ(report.initialised.size(), static_cast<size_t>(seg));
}

TEST_F(OnnxBackboneTest, WrongFirstConvIsAnErrorNamingBothAndWritesNothing) {
  const fs::path graph = write("wrong.toml", R"toml(
[graph]
name = "wrong"
inputs = { image = [1, 32, 32] }
outputs = { y = "fc" }
nodes = [
  { op = "conv2d", name = "first", in = "image", out = 32, kernel = 3, stride = 2, bias = false },
  { op = "batch_norm", name = "bn" },
  { op = "relu", name = "r" },
  { op = "global_avg_pool", name = "gap" },
  { op = "dense", name = "fc", out = 2 },
]
)toml");
  Model source(emt::parse_graph_file(graph), 1);
  randomize(source, 7);
  const fs::path onnx = dir_ / "wrong.onnx";
  emt::export_onnx(source, onnx);

  const Model target(emt::parse_graph_file(source_root() / "graphs" / "emtnet.toml"), 1);
  const fs::path out = dir_ / "init.safetensors";
  try {
    emt::import_onnx_backbone(onnx, target, out);
    FAIL() << "imported a model whose first conv reads 1 channel";
  } catch (const emt::LayerMappingError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("'first'"), std::string::npos) << what;
    EXPECT_NE(what.find("backbone.stem.conv"), std::string::npos) << what;
    EXPECT_NE(what.find(emt::shape_str({32, 1, 3, 3})), std::string::npos) << what;
    EXPECT_NE(what.find(emt::shape_str({32, 3, 3, 3})), std::string::npos) << what;
  }
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(OnnxBackboneTest, FoldedReferenceModelInitialisesAll27BackboneConvolutions) {
  const fs::path ref = shared_root() / "reference" / "emtnet_ref.onnx";
  if (!fs::exists(ref)) EMT_SKIP_MISSING(ref << " is absent");
  const Model target(emt::parse_graph_file(source_root() / "graphs" / "emtnet.toml"), 1);
  const fs::path out = dir_ / "init.safetensors";
  const emt::ImportReport report = emt::import_onnx_backbone(ref, target, out);
  SCOPED_TRACE(report.summary());

  EXPECT_GE(report.layers, 27);
  std::set<std::string> matched;
  for (const emt::ImportedTensor& t : report.matched) matched.insert(t.param);
  const std::set<std::string> initialised(report.initialised.begin(), report.initialised.end());
  int convs = 0;
  for (const emt::NamedTensor& t : target.params().to_tensors()) {
    if (!starts_with(t.name, "backbone.")) continue;
    EXPECT_TRUE(matched.count(t.name)) << t.name << " not matched";
    EXPECT_FALSE(initialised.count(t.name)) << t.name;
    convs += t.name.ends_with(".conv.weight");
  }
  EXPECT_EQ(convs, 27);

  // Folded batch norm: the identity plus the conv bias as beta.
  const emt::SafetensorsFile written = emt::read_safetensors(out);
  for (const emt::NamedTensor& t : written.tensors) {
    if (!starts_with(t.name, "backbone.")) continue;
    if (t.name.ends_with(".bn.gamma")) {
      for (float v : t.data) ASSERT_EQ(v, 1.0f) << t.name;
    }
    if (t.name.ends_with(".bn.running_mean")) {
      for (float v : t.data) ASSERT_EQ(v, 0.0f) << t.name;
    }
  }
  for (const emt::ImportedTensor& t : report.matched) {
    if (t.param == "backbone.stem.bn.beta") {
      EXPECT_NE(t.source.find("folded bias"), std::string::npos) << t.source;
    }
  }
}

}  // namespace
