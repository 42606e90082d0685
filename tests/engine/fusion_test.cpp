// Inference fusion (CompileOptions::fuse): batch norms folded into convolutions, activations
// fused into them and dropout removed must leave eval outputs unchanged, follow parameter
// updates, and shrink the program and its arena.
#include "engine/compiler/fusion.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "engine/compiler/memory_plan.h"
#include "engine/compiler/plan_report.h"
#include "engine/dsl/parser.h"
#include "engine/runtime/model.h"
#include "engine/runtime/threading.h"
#include "engine/train/optimizer.h"
#include "tests/engine/temp_dir_test.h"

namespace emt {
namespace {

std::string graph_path(const std::string& name) {
  const char* root = std::getenv("EMT_SOURCE_DIR");
  return std::string(root ? root : ".") + "/graphs/" + name;
}

void set(ParamStore& store, const std::string& name, const std::vector<float>& values) {
  std::vector<float>& v = store.at(name).value;
  ASSERT_EQ(v.size(), values.size()) << name;
  std::copy(values.begin(), values.end(), v.begin());  // in place: executors hold its address
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape, b.shape);
  double worst = 0;
  for (int64_t i = 0; i < a.numel(); ++i)
    worst = std::max(worst, std::abs(double(a.data[i]) - double(b.data[i])));
  return worst;
}

class FusionTest : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    init_threading(2);
  }
};

// conv_transpose2d (weight [Cin=2, Cout=3, 2, 2], bias) -> batch_norm (eps 1) -> relu, with
// numbers chosen so that every folded value is exact in float32.
constexpr std::string_view kDeconvGraph = R"toml(
[graph]
name = "deconv_fold"
inputs = { image = [2, 1, 1] }
outputs = { seg = "act" }
nodes = [
  { op = "conv_transpose2d", name = "up", in = "image", out = 3, kernel = 2, stride = 2, pad = 0 },
  { op = "batch_norm", name = "bn", eps = 1.0 },
  { op = "relu", name = "act" },
]
)toml";

// W[i][c][kh][kw] = 12 i + 4 c + 2 kh + kw + 1. The batch norm's scale per output channel c
// (axis 1 of the weight) is gamma / sqrt(var + eps) = 4/2, 3/1, -2/4 = 2, 3, -0.5.
const std::vector<float> kWeight = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12,
                                    13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24};
const std::vector<float> kBias = {1, 2, 3};
const std::vector<float> kGamma = {4, 3, -2}, kBeta = {0, 1, -1};
const std::vector<float> kMean = {1, 0, 2}, kVar = {3, 0, 15};

void set_deconv_params(ParamStore& store) {
  set(store, "up.weight", kWeight);
  set(store, "up.bias", kBias);
  set(store, "bn.gamma", kGamma);
  set(store, "bn.beta", kBeta);
  set(store, "bn.running_mean", kMean);
  set(store, "bn.running_var", kVar);
  store.mark_updated();
}

TEST(FoldBatchNorm, TransposedWeightScalesItsSecondAxis) {
  std::vector<float> weight(24), bias(3);
  fold_batch_norm({2, 3, 2, 2}, 1, 1.0, kWeight.data(), kBias.data(), kGamma.data(), kBeta.data(),
                  kMean.data(), kVar.data(), weight.data(), bias.data());
  // Each [2, 2] filter of output channel c times 2, 3, -0.5.
  EXPECT_EQ(weight, (std::vector<float>{2,  4,  6,  8,  15, 18, 21, 24, -4.5,  -5,  -5.5,  -6,
                                        26, 28, 30, 32, 51, 54, 57, 60, -10.5, -11, -11.5, -12}));
  // (b - mean) * s + beta = (1-1)*2 + 0, (2-0)*3 + 1, (3-2)*-0.5 - 1.
  EXPECT_EQ(bias, (std::vector<float>{0, 7, -1.5f}));

  // Without a bias b = 0: -mean * s + beta.
  fold_batch_norm({2, 3, 2, 2}, 1, 1.0, kWeight.data(), nullptr, kGamma.data(), kBeta.data(),
                  kMean.data(), kVar.data(), weight.data(), bias.data());
  EXPECT_EQ(bias, (std::vector<float>{-2, 1, 0}));
}

TEST(FoldBatchNorm, ConvWeightScalesItsFirstAxis) {
  // conv2d weight [Cout=2, Cin=1, 1, 2]; scales gamma / sqrt(var + eps) = 1/2 and 6/3.
  const std::vector<float> w = {1, 2, 3, 4}, gamma = {1, 6}, beta = {0.5f, 0}, mean = {1, -1},
                           var = {3.75f, 8.75f};
  std::vector<float> weight(4), bias(2);
  fold_batch_norm({2, 1, 1, 2}, 0, 0.25, w.data(), nullptr, gamma.data(), beta.data(), mean.data(),
                  var.data(), weight.data(), bias.data());
  EXPECT_EQ(weight, (std::vector<float>{0.5f, 1, 6, 8}));
  EXPECT_EQ(bias, (std::vector<float>{0, 2}));
}

TEST_F(FusionTest, DeconvBatchNormReluFoldsToHandComputedOutput) {
  const GraphFile file = parse_graph_file(write("fold.toml", kDeconvGraph));
  for (Backend backend : {Backend::kReference, Backend::kOnednn}) {
    Model model(file, 1, backend);
    set_deconv_params(model.params());
    Executor& fused = model.executor(1, Mode::kEval);
    const Program& p = fused.program();
    ASSERT_TRUE(p.fused);
    ASSERT_EQ(p.steps.size(), 1u);
    EXPECT_EQ(fusion_label(p.steps[0]), "up + bn + act");
    EXPECT_EQ(p.steps[0].impl, backend == Backend::kOnednn ? "onednn" : "reference")
        << p.steps[0].dispatch_note;
    Tensor image = fused.value("image");
    image.data[0] = 2;
    image.data[1] = 1;
    fused.forward();
    // Before the norm, y[c] = 2 W[0][c] + W[1][c] + b[c] = 3 (4c + k + 1) + 12 + b[c]:
    // 16..25, 29..38, 42..51; after it 30..48, 88..115, and -21..-25.5, which relu zeroes.
    const Tensor out = fused.value("act");
    EXPECT_EQ(std::vector<float>(out.data, out.data + out.numel()),
              (std::vector<float>{30, 36, 42, 48, 88, 97, 106, 115, 0, 0, 0, 0}))
        << backend_name(backend);
  }
}

TEST_F(FusionTest, PinnedValuesAreNotAbsorbed) {
  // bn is a graph output, so it must survive: the norm still folds (its value becomes the
  // convolution's output), but the relu cannot join, and the dropout before the conv goes.
  const GraphFile file = parse_graph_file(write("pinned.toml", R"toml(
[graph]
name = "pinned"
inputs = { image = [2, 4, 4] }
outputs = { normed = "bn", seg = "act" }
nodes = [
  { op = "dropout", name = "drop", in = "image", rate = 0.5 },
  { op = "conv2d", name = "conv", out = 3, kernel = 3, bias = false },
  { op = "batch_norm", name = "bn" },
  { op = "relu6", name = "act" },
]
)toml"));
  const auto graph = std::make_shared<const Graph>(file.graph);
  const Program p = compile(graph, 1, Backend::kReference, {.fuse = true});
  ASSERT_EQ(p.steps.size(), 2u);
  EXPECT_EQ(fusion_label(p.steps[0]), "conv + bn");
  EXPECT_EQ(p.steps[0].inputs, std::vector<int>{p.value("image")});
  EXPECT_EQ(p.steps[1].node->name, "act");
  EXPECT_EQ(p.elided_nodes, std::vector<std::string>{"drop"});
  EXPECT_EQ(p.outputs.at("normed"), p.value("bn"));
  EXPECT_EQ(p.value("drop"), p.value("image"));  // the identity reads as its input
  EXPECT_THROW(p.value("conv"), std::out_of_range);
}

// Batch norm parameters and statistics away from their defaults (gamma 1, beta 0, mean 0,
// var 1), where a fold that mixes up channels or forgets a term would still pass.
void randomize_batch_norms(ParamStore& store, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> around_one(0.5f, 1.5f), around_zero(-0.5f, 0.5f);
  for (const std::string& name : store.names()) {
    ParamEntry& e = store.at(name);
    auto& dist =
        (e.spec.name == "gamma" || e.spec.name == "running_var") ? around_one : around_zero;
    if (e.spec.name == "gamma" || e.spec.name == "beta" || e.spec.name == "running_mean" ||
        e.spec.name == "running_var" || e.spec.name == "bias")
      for (float& v : e.value) v = dist(rng);
  }
  store.mark_updated();
}

void fill_inputs(Executor& exec, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> pixel(-2.0f, 2.0f);
  std::bernoulli_distribution coin(0.4);
  Tensor image = exec.value("image");
  for (int64_t i = 0; i < image.numel(); ++i) image.data[i] = pixel(rng);
  for (const GraphInput& t : exec.program().graph->targets) {
    Tensor target = exec.value(t.name);
    for (int64_t i = 0; i < target.numel(); ++i) target.data[i] = coin(rng) ? 1.0f : 0.0f;
  }
}

// The largest difference between the fused and the unfused program over every graph output.
double fused_vs_unfused(Model& model, const GraphFile& file, uint32_t seed) {
  constexpr int64_t kBatch = 2;
  Executor& fused = model.executor(kBatch, Mode::kEval);
  EXPECT_TRUE(fused.program().fused);
  Executor plain(compile(std::make_shared<const Graph>(file.graph), kBatch, model.backend()),
                 model.params(), Mode::kEval);
  fill_inputs(fused, seed);
  fill_inputs(plain, seed);
  fused.forward();
  plain.forward();
  double worst = 0;
  for (const GraphOutput& out : file.graph.outputs) {
    const double diff = max_abs_diff(fused.value(fused.program().outputs.at(out.name)),
                                     plain.value(plain.program().outputs.at(out.name)));
    EXPECT_LE(diff, 1e-4) << out.name;
    worst = std::max(worst, diff);
  }
  // The objective reads its inputs by name, which fusion must keep.
  EXPECT_NEAR(fused.objective().total, plain.objective().total, 1e-4);
  return worst;
}

struct GraphBackend {
  const char* graph;
  Backend backend;
};

class FusedEmtNet : public ::testing::TestWithParam<GraphBackend> {
 protected:
  void SetUp() override { init_threading(2); }
};

TEST_P(FusedEmtNet, MatchesUnfusedAndFollowsParameterUpdates) {
  const GraphFile file = parse_graph_file(graph_path(GetParam().graph), {"data.input_size=64"});
  Model model(file, 5, GetParam().backend);
  randomize_batch_norms(model.params(), 17);
  fused_vs_unfused(model, file, 3);

  // One training step, as the trainer runs it. The eval executor folds in between, after the
  // forward has moved the running statistics, so only mark_updated() tells it about the
  // optimizer's update.
  Executor& eval = model.executor(2, Mode::kEval);
  const std::string probe = file.graph.outputs.front().name;
  eval.forward();
  const Tensor out = eval.value(eval.program().outputs.at(probe));
  std::vector<float> before(out.data, out.data + out.numel());
  Executor& train = model.executor(2, Mode::kTrain);
  fill_inputs(train, 4);
  train.forward(1);
  model.params().zero_grads();
  train.backward();
  eval.forward();
  std::vector<ParamSlot> slots;
  for (const std::string& name : model.params().names()) {
    ParamEntry& e = model.params().at(name);
    if (e.spec.trainable)
      slots.push_back({name, e.value.data(), e.grad.data(), int64_t(e.value.size()), true});
  }
  Optimizer::make({})->step(slots, 1e-2);
  model.params().mark_updated();

  eval.forward();
  EXPECT_GT(max_abs_diff(out, Tensor{before.data(), out.shape}), 1e-3)
      << "the step should move " << probe;
  fused_vs_unfused(model, file, 6);
}

INSTANTIATE_TEST_SUITE_P(Graphs, FusedEmtNet,
                         ::testing::Values(GraphBackend{"emtnet.toml", Backend::kReference},
                                           GraphBackend{"emtnet.toml", Backend::kOnednn},
                                           GraphBackend{"single_clf.toml", Backend::kReference},
                                           GraphBackend{"single_clf.toml", Backend::kOnednn},
                                           GraphBackend{"single_sgm.toml", Backend::kReference},
                                           GraphBackend{"single_sgm.toml", Backend::kOnednn}),
                         [](const auto& info) {
                           std::string name = info.param.graph;
                           name = name.substr(0, name.find('.')) + "_" +
                                  backend_name(info.param.backend);
                           return name;
                         });

TEST(FusedEmtNetPlan, ListsFusionsAndShrinksTheArena) {
  const GraphFile file = parse_graph_file(graph_path("emtnet.toml"), {"data.input_size=64"});
  const auto graph = std::make_shared<const Graph>(file.graph);
  const Program plain = compile(graph, 1, Backend::kOnednn);
  const Program fused = compile(graph, 1, Backend::kOnednn, {.fuse = true});

  // 27 encoder and 13 decoder conv + bn + relu units, the last conv of each of the 4 decoder
  // blocks with its skip addition too; the classifier's dropout.
  size_t count = 0;
  for (const Step& s : fused.steps) {
    if (s.fused.empty()) continue;
    ++count;
    EXPECT_EQ(s.impl, "onednn") << fusion_label(s) << ": " << s.dispatch_note;
  }
  EXPECT_EQ(count, 40u);
  EXPECT_EQ(fused.elided_nodes, std::vector<std::string>{"cls_head.drop"});
  EXPECT_EQ(fused.steps.size(), plain.steps.size() - 85);
  EXPECT_LT(plan_memory(fused, Lifetime::kInference).arena_floats,
            plan_memory(plain, Lifetime::kInference).arena_floats);
  EXPECT_EQ(fused.trainable_param_count(), plain.trainable_param_count());
  // Outputs, block aliases and skip sources still resolve.
  EXPECT_EQ(fused.outputs.at("cls"), fused.value("cls_prob"));
  EXPECT_EQ(fused.outputs.at("seg"), fused.value("seg_prob"));
  EXPECT_EQ(fused.value("backbone.ds1"), fused.value("backbone.ds1.pw.relu"));
  // The skip addition's value is the fused convolution's output, which reads the encoder's map
  // as its residual; the reference backend keeps the addition.
  const Step& skip1 = fused.steps[fused.values[fused.value("seg.skip1")].producer];
  EXPECT_EQ(skip1.node->name, "seg.dec1.expand.conv");
  ASSERT_EQ(skip1.inputs.size(), 2u);
  EXPECT_EQ(skip1.inputs[1], fused.value("backbone.ds1"));
  const Program reference = compile(graph, 1, Backend::kReference, {.fuse = true});
  EXPECT_EQ(reference.steps[reference.values[reference.value("seg.skip1")].producer].node->op,
            "add");

  for (const Program* p : {&plain, &fused}) {
    const std::string plan = format_plan(*p);
    for (const char* line : {"  backbone.ds1.dw.conv + bn + relu\n", "  seg.up.conv + bn + relu\n",
                             "  seg.dec1.expand.conv + bn + relu + skip1\n",
                             "  cls_head.drop removed", "inference fusion", "arena with fusion"})
      EXPECT_NE(plan.find(line), std::string::npos) << line << " not in\n" << plan;
  }
}

// Executor::objective() runs after the forward in eval mode too (the validation loss), so the
// inference plan must not hand cls_logit's bytes to the segmentation branch, which runs after
// the classifier's sigmoid, its last reader.
TEST(FusedEmtNetPlan, EvalObjectiveInputsOutliveTheForward) {
  const GraphFile file = parse_graph_file(graph_path("emtnet.toml"), {"data.input_size=64"});
  const auto graph = std::make_shared<const Graph>(file.graph);
  for (bool fuse : {false, true}) {
    const Program p = compile(graph, 2, Backend::kReference, {.fuse = fuse});
    const MemoryPlan plan = plan_memory(p, Lifetime::kInference);
    const int logit = p.value("cls_logit");
    const int64_t begin = plan.offsets[logit], end = begin + shape_numel(p.values[logit].shape);
    for (size_t v = 0; v < p.values.size(); ++v) {
      const int64_t b = plan.offsets[v], e = b + shape_numel(p.values[v].shape);
      const bool later = p.values[v].producer > p.values[logit].producer;
      EXPECT_FALSE(later && b < end && begin < e) << p.values[v].name << " overwrites cls_logit";
    }
  }
}

TEST(FusedEmtNetPlan, ModelFusesEvalOnlyAndCanBeTurnedOff) {
  const GraphFile file = parse_graph_file(graph_path("single_clf.toml"), {"data.input_size=32"});
  Model model(file, 1);
  EXPECT_TRUE(model.inference_fusion());
  EXPECT_TRUE(model.executor(1, Mode::kEval).program().fused);
  EXPECT_FALSE(model.executor(2, Mode::kTrain).program().fused);
  model.set_inference_fusion(false);
  EXPECT_FALSE(model.executor(1, Mode::kEval).program().fused);

  const auto graph = std::make_shared<const Graph>(file.graph);
  EXPECT_THROW(Executor(compile(graph, 2, Backend::kReference, {.fuse = true}), model.params(),
                        Mode::kTrain),
               std::logic_error);
}

}  // namespace
}  // namespace emt
