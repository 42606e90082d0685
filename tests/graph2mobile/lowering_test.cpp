// graph2mobile end to end: the lowering (engine/mobile), the artifact file, and the mobile runtime
// with the NEON kernels, against the engine's reference backend running the graph as written (no
// fusion, no folding: an independent path to the same numbers).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "engine/dsl/parser.h"
#include "engine/mobile/lower.h"
#include "engine/mobile/verify.h"
#include "engine/runtime/batch.h"
#include "engine/runtime/model.h"
#include "engine/runtime/threading.h"
#include "mobile/artifact.h"
#include "mobile/runtime.h"
#include "tests/engine/temp_dir_test.h"
#include "tests/engine/tiny_graph.h"

namespace {

namespace fs = std::filesystem;
using emt::mobile::Artifact;
using emt::mobile::Runtime;

// Random weights and batch-norm statistics far from their initial identity, so that a wrong fold
// or a skipped bias shows.
emt::SafetensorsFile random_weights(emt::Model& model, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> shift(-0.3f, 0.3f), scale(0.5f, 1.5f);
  for (const std::string& name : model.params().names()) {
    std::vector<float>& v = model.params().at(name).value;
    const bool positive = name.ends_with("running_var") || name.ends_with("gamma");
    for (float& x : v) x = positive ? scale(rng) : x + shift(rng);
  }
  model.params().mark_updated();
  emt::SafetensorsFile file;
  file.tensors = model.params().to_tensors();
  file.metadata = {
      {"input_size", "32"}, {"norm_mean", "0.5"}, {"norm_std", "0.25"}, {"threshold", "0.4"}};
  return file;
}

struct Batch {
  std::vector<emt::Sample> samples;
  std::vector<float> images, labels, masks;
};

Batch random_batch(const emt::Graph& graph, int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> pixel(0.0f, 1.0f);
  std::bernoulli_distribution coin(0.4);
  const int64_t image_size = emt::shape_numel(graph.inputs.front().shape);
  int64_t mask_size = 0;  // 0: the graph has no mask target (Single-CLF)
  for (const emt::GraphInput& t : graph.targets)
    if (t.name == emt::kMaskTarget) mask_size = emt::shape_numel(t.shape);
  Batch b;
  for (int i = 0; i < n; ++i) {
    emt::Sample s;
    s.id = std::to_string(i);
    s.label = i % 2;
    for (int64_t k = 0; k < image_size; ++k) s.image.push_back(pixel(rng));
    for (int64_t k = 0; k < mask_size; ++k) s.mask.push_back(coin(rng) ? 1.0f : 0.0f);
    b.images.insert(b.images.end(), s.image.begin(), s.image.end());
    b.masks.insert(b.masks.end(), s.mask.begin(), s.mask.end());
    b.labels.push_back(static_cast<float>(s.label));
    b.samples.push_back(std::move(s));
  }
  return b;
}

class MobileTest : public emt::test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    emt::init_threading(2);
  }

  // The engine's outputs ("cls", "seg", those the graph has) and objective for the batch,
  // unfused reference.
  struct Expected {
    std::map<std::string, std::vector<float>> outputs;
    double loss = 0;
  };
  static Expected engine_outputs(const emt::GraphFile& file, const emt::SafetensorsFile& weights,
                                 const Batch& batch) {
    emt::Model model(file, 0);
    model.set_inference_fusion(false);
    model.params().load_tensors(weights, "weights");
    emt::Executor& exec =
        model.executor(static_cast<int64_t>(batch.samples.size()), emt::Mode::kEval);
    std::vector<const emt::Sample*> pointers;
    for (const emt::Sample& s : batch.samples) pointers.push_back(&s);
    emt::load_batch(exec, pointers);
    exec.forward();
    Expected want;
    for (const auto& [name, value] : exec.program().outputs) want.outputs[name] = exec.read(value);
    want.loss = exec.objective().total;
    return want;
  }

  // Runs the artifact on the batch and compares every output and the objective with the engine.
  static void expect_matches_engine(const emt::GraphFile& file, const emt::SafetensorsFile& weights,
                                    Artifact artifact, const Batch& batch, double tolerance) {
    const Expected want = engine_outputs(file, weights, batch);
    const auto n = static_cast<int64_t>(batch.samples.size());
    Runtime runtime(std::move(artifact), n);
    runtime.run(batch.images, n);
    ASSERT_EQ(runtime.artifact().outputs.size(), want.outputs.size());
    for (const auto& [name, expected] : want.outputs) {
      const std::span<const float> got = runtime.output(name);
      ASSERT_EQ(got.size(), expected.size()) << name;
      double max_diff = 0;
      for (size_t i = 0; i < got.size(); ++i)
        max_diff = std::max(max_diff, double(std::abs(got[i] - expected[i])));
      EXPECT_LT(max_diff, tolerance) << name;
      // Probabilities away from 0 and 1, or the comparison above proves little.
      const auto spread = std::minmax_element(expected.begin(), expected.end());
      if (name == "seg") {
        EXPECT_LT(*spread.first, 0.45f);
        EXPECT_GT(*spread.second, 0.55f);
      }
    }
    std::vector<std::span<const float>> targets;
    for (const emt::mobile::ValueDesc& t : runtime.artifact().targets)
      targets.emplace_back(t.name == emt::kMaskTarget ? std::span<const float>(batch.masks)
                                                      : std::span<const float>(batch.labels));
    const emt::ObjectiveValue loss = runtime.objective(targets);
    EXPECT_NEAR(loss.total, want.loss, tolerance * std::max(1.0, std::abs(want.loss)));
  }
};

TEST_F(MobileTest, TinyGraphMatchesTheEngine) {
  const emt::GraphFile file = emt::parse_graph_file(write("tiny.toml", emt::test::kTinyGraph), {});
  emt::Model model(file, 3);
  const emt::SafetensorsFile weights = random_weights(model, 1);
  expect_matches_engine(file, weights, emt::lower_to_mobile(file, weights, "weights"),
                        random_batch(file.graph, 3, 2), 2e-5);
}

// EMT-Net itself and its single-task baselines, at 64x64 to stay fast: every kind of step they
// have (TF-SAME stem, depthwise and pointwise blocks, the decoder's transposed convolutions,
// skip additions, either head alone or both).
TEST_F(MobileTest, EmtNetAndBaselinesMatchTheEngine) {
  const char* source = std::getenv("EMT_SOURCE_DIR");
  ASSERT_NE(source, nullptr) << "ctest sets EMT_SOURCE_DIR";
  for (const char* graph : {"graphs/emtnet.toml", "graphs/emtnet_pretrained.toml",
                            "graphs/single_clf.toml", "graphs/single_sgm.toml"}) {
    SCOPED_TRACE(graph);
    const emt::GraphFile file =
        emt::parse_graph_file(fs::path(source) / graph, {"data.input_size=64"});
    emt::Model model(file, 5);
    const emt::SafetensorsFile weights = random_weights(model, 4);
    const Artifact artifact = emt::lower_to_mobile(file, weights, "weights");
    const bool has_decoder = artifact.outputs.count("seg") > 0;
    EXPECT_EQ(std::count_if(artifact.steps.begin(), artifact.steps.end(),
                            [](const auto& s) { return s.kind == emt::mobile::StepKind::kAdd; }),
              has_decoder ? 4 : 0)
        << "the four skip additions stay steps";
    expect_matches_engine(file, weights, artifact, random_batch(file.graph, 2, 6), 1e-4);
  }
}

TEST_F(MobileTest, ArtifactFileRoundTripsAndCarriesTheWeightsSettings) {
  const emt::GraphFile file = emt::parse_graph_file(write("tiny.toml", emt::test::kTinyGraph), {});
  emt::Model model(file, 3);
  const Artifact artifact = emt::lower_to_mobile(file, random_weights(model, 1), "weights");
  const fs::path path = dir_ / "tiny.emtm";
  emt::mobile::write_artifact(artifact, path);
  EXPECT_FALSE(fs::exists(dir_ / "tiny.emtm.tmp"));
  const Artifact back = emt::mobile::read_artifact(path);
  EXPECT_EQ(back.graph, "tiny");
  EXPECT_EQ(back.weights, artifact.weights);
  EXPECT_EQ(back.metadata.at("threshold"), "0.4");
  EXPECT_EQ(back.outputs, artifact.outputs);
  ASSERT_EQ(back.steps.size(), artifact.steps.size());
  for (size_t s = 0; s < back.steps.size(); ++s) {
    EXPECT_EQ(back.steps[s].name, artifact.steps[s].name);
    EXPECT_EQ(back.steps[s].inputs, artifact.steps[s].inputs);
    EXPECT_EQ(back.steps[s].conv.pad_bottom, artifact.steps[s].conv.pad_bottom);
    EXPECT_EQ(back.steps[s].conv.activation, artifact.steps[s].conv.activation);
    EXPECT_EQ(back.steps[s].bias.offset, artifact.steps[s].bias.offset);
  }
  ASSERT_EQ(back.objective.size(), 2u);
  EXPECT_EQ(back.objective[0].weight, artifact.objective[0].weight);
  // Batch norms are folded away and relus fused: fewer steps than graph nodes.
  EXPECT_LT(back.steps.size(), file.graph.nodes.size());
}

TEST_F(MobileTest, CorruptFilesAreRefusedWithTheByteOffset) {
  const emt::GraphFile file = emt::parse_graph_file(write("tiny.toml", emt::test::kTinyGraph), {});
  emt::Model model(file, 3);
  const fs::path path = dir_ / "tiny.emtm";
  emt::mobile::write_artifact(emt::lower_to_mobile(file, random_weights(model, 1), "weights"),
                              path);
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto expect_refused = [&](const std::string& content, const std::string& why) {
    std::ofstream(dir_ / "bad.emtm", std::ios::binary) << content;
    try {
      emt::mobile::read_artifact(dir_ / "bad.emtm");
      ADD_FAILURE() << why << ": accepted";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("bad.emtm"), std::string::npos) << e.what();
    }
  };
  expect_refused("EMTMOBL\x01" + bytes.substr(8), "another version");
  for (size_t cut = 0; cut < bytes.size(); cut += 97)
    expect_refused(bytes.substr(0, cut), "truncated at " + std::to_string(cut));
  expect_refused(bytes + "x", "trailing byte");
  // The value count, right after the magic and the graph name, made huge.
  std::string huge = bytes;
  std::fill_n(huge.begin() + 8 + 4 + 4, 8, '\xff');
  expect_refused(huge, "huge count");
}

TEST_F(MobileTest, ArenaSharesMemoryAndRunChecksItsInput) {
  const emt::GraphFile file = emt::parse_graph_file(write("tiny.toml", emt::test::kTinyGraph), {});
  emt::Model model(file, 3);
  const Artifact artifact = emt::lower_to_mobile(file, random_weights(model, 1), "weights");
  uint64_t total = 0;
  for (const auto& v : artifact.values) total += v.size();
  Runtime runtime(artifact, 2);
  EXPECT_LT(runtime.arena_floats(), static_cast<int64_t>(total) * 2);
  const Batch batch = random_batch(file.graph, 3, 1);
  EXPECT_THROW(runtime.run(batch.images, 3), std::invalid_argument);  // above max_batch
  EXPECT_THROW(runtime.run(std::span(batch.images).first(5), 1), std::invalid_argument);
  EXPECT_THROW(runtime.output("nope"), std::out_of_range);
}

TEST_F(MobileTest, AnOpWithoutMobileKernelIsAnErrorAtItsNode) {
  std::string graph(emt::test::kTinyGraph);
  const std::string anchor = R"({ op = "add", name = "s1", in = ["ur2", "r1"] },)";
  graph.replace(graph.find(anchor), anchor.size(),
                anchor + "\n  { op = \"batch_norm\", name = \"lonely_bn\" },");
  graph.replace(graph.find(R"(name = "seg_logit", out = 1, kernel = 3 })"),
                std::string(R"(name = "seg_logit", out = 1, kernel = 3 })").size(),
                R"(name = "seg_logit", in = "lonely_bn", out = 1, kernel = 3 })");
  const emt::GraphFile file = emt::parse_graph_file(write("bn.toml", graph), {});
  emt::Model model(file, 3);
  try {
    emt::lower_to_mobile(file, random_weights(model, 1), "weights");
    FAIL() << "a batch norm after an add has no convolution to fold into";
  } catch (const emt::GraphError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("bn.toml:"), std::string::npos) << what;
    EXPECT_NE(what.find("lonely_bn"), std::string::npos) << what;
  }
}

// graph2mobile's self-check reports agreement for a faithful model and the error of a broken one.
TEST_F(MobileTest, SelfCheckMeasuresTheDifferenceFromTheEngine) {
  const emt::GraphFile file =
      emt::parse_graph_file(write("tiny.toml", emt::test::kTinyGraph), {"data.input_size=32"});
  emt::Model model(file, 3);
  const emt::SafetensorsFile weights = random_weights(model, 1);
  Artifact artifact = emt::lower_to_mobile(file, weights, "weights");
  const emt::MobileCheck faithful = emt::check_against_engine(file, weights, artifact, 3);
  EXPECT_EQ(faithful.images, 3);
  EXPECT_LT(faithful.max_cls_diff, 1e-5);
  EXPECT_LT(faithful.max_seg_diff, 1e-4);
  EXPECT_GT(faithful.mask_agreement, 0.999);
  // The mask logit's bias moved by 5: every mask probability changes, some cross 0.5.
  const auto& seg_logit = *std::find_if(artifact.steps.begin(), artifact.steps.end(),
                                        [](const auto& s) { return s.name == "seg_logit"; });
  artifact.weights[seg_logit.bias.offset] += 5.0f;
  const emt::MobileCheck broken = emt::check_against_engine(file, weights, artifact, 3);
  EXPECT_GT(broken.max_seg_diff, 0.3);
  EXPECT_LT(broken.mask_agreement, faithful.mask_agreement);
  EXPECT_LT(broken.max_cls_diff, 1e-5) << "the classifier does not read the mask logit";
}

}  // namespace
