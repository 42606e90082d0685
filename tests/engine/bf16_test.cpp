// bf16 inference (CompileOptions::precision): which values the plan keeps in bf16, and how far
// EMT-Net's bf16 outputs are from its fp32 ones on phantom images.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/compiler/plan_report.h"
#include "engine/data/phantom.h"
#include "engine/data/preprocess.h"
#include "engine/dsl/parser.h"
#include "engine/runtime/batch.h"
#include "engine/runtime/model.h"
#include "ops/registry_onednn.h"

namespace emt {
namespace {

std::string graph_path(const std::string& name) {
  const char* root = std::getenv("EMT_SOURCE_DIR");
  return std::string(root ? root : ".") + "/graphs/" + name;
}

#define SKIP_WITHOUT_BF16()                                                      \
  do {                                                                           \
    const std::string reason = onednn_bf16_unsupported_reason();                 \
    if (!reason.empty()) GTEST_SKIP() << "this CPU cannot run bf16: " << reason; \
  } while (0)

TEST(Bf16Plan, KeepsOnlyValuesBetweenBf16VariantsInBf16) {
  SKIP_WITHOUT_BF16();
  const GraphFile file = parse_graph_file(graph_path("emtnet.toml"), {"data.input_size=64"});
  const auto graph = std::make_shared<const Graph>(file.graph);
  const Program p =
      compile(graph, 2, Backend::kOnednn, {.fuse = true, .precision = Precision::kBf16});
  EXPECT_EQ(p.precision, Precision::kBf16);
  std::set<int> engine_facing;
  for (const auto& [name, v] : p.outputs) engine_facing.insert(v);
  for (const LossTerm& t : graph->objective.terms) engine_facing.insert(p.value(t.input));
  int bf16 = 0;
  for (size_t v = 0; v < p.values.size(); ++v) {
    const ValueInfo& value = p.values[v];
    if (value.dtype != DataType::kBF16) continue;
    ++bf16;
    EXPECT_EQ(value.kind, ValueKind::kActivation) << value.name;
    EXPECT_EQ(value.layout, Layout::kChannelBlocked) << value.name;
    EXPECT_FALSE(engine_facing.count(static_cast<int>(v)))
        << value.name << " is read by the engine";
    EXPECT_TRUE(p.steps[value.producer].bf16) << value.name;
    for (int c : value.consumers) EXPECT_TRUE(p.steps[c].bf16) << value.name;
  }
  // Every reference kernel and every variant without bf16 sees f32 only.
  for (const Step& s : p.steps) {
    if (s.bf16) continue;
    EXPECT_EQ(p.values[s.output].dtype, DataType::kF32) << s.node->name;
    for (int v : s.inputs) EXPECT_EQ(p.values[v].dtype, DataType::kF32) << s.node->name;
  }
  // The backbone and the decoder, 43 of EMT-Net's activations at 64x64; not the mask logit's
  // input, which the single-output-channel kernel reads in f32 (OpVariant::prefers_f32).
  EXPECT_EQ(bf16, 43);
  const Step& logit = p.steps[p.values[p.value("seg.logit")].producer];
  EXPECT_FALSE(logit.bf16);
  EXPECT_EQ(p.values[logit.inputs[0]].dtype, DataType::kF32);
  const std::string dispatch = format_dispatch(p);
  EXPECT_NE(dispatch.find("43 of them in bf16"), std::string::npos) << dispatch;
  EXPECT_NE(dispatch.find("nChw16c bf16"), std::string::npos) << dispatch;
}

TEST(Bf16Plan, IsRefusedOutsideFusedOnednnInference) {
  const GraphFile file = parse_graph_file(graph_path("emtnet.toml"), {"data.input_size=64"});
  const auto graph = std::make_shared<const Graph>(file.graph);
  const CompileOptions bf16{.precision = Precision::kBf16};
  EXPECT_THROW(compile(graph, 1, Backend::kOnednn, bf16), std::invalid_argument);
  EXPECT_THROW(
      compile(graph, 1, Backend::kReference, {.fuse = true, .precision = Precision::kBf16}),
      std::invalid_argument);
  EXPECT_EQ(parse_precision("bf16"), Precision::kBf16);
  EXPECT_THROW(parse_precision("fp16"), std::invalid_argument);
}

// Mean Dice of masks thresholded at 0.5, per image of a batch; 1 when both are empty.
double mean_dice(const std::vector<float>& a, const std::vector<float>& b, int64_t batch) {
  const size_t per = a.size() / static_cast<size_t>(batch);
  double sum = 0;
  for (int64_t k = 0; k < batch; ++k) {
    int64_t both = 0, either = 0;
    for (size_t i = k * per; i < (k + 1) * per; ++i) {
      const bool x = a[i] >= 0.5f, y = b[i] >= 0.5f;
      both += x && y;
      either += int64_t(x) + int64_t(y);
    }
    sum += either == 0 ? 1.0 : 2.0 * double(both) / double(either);
  }
  return sum / double(batch);
}

// Issue 3's agreement: classifier probabilities within 1e-2 and masks (at 0.5) with Dice >= 0.99
// against fp32, with the same (random) weights, on phantom images at 64x64.
TEST(Bf16EmtNet, MatchesFp32OnPhantomImages) {
  SKIP_WITHOUT_BF16();
  const GraphFile file = parse_graph_file(graph_path("emtnet.toml"), {"data.input_size=64"});
  constexpr int64_t kBatch = 8;
  Model fp32(file, 3, Backend::kOnednn), bf16(file, 3, Backend::kOnednn);
  bf16.set_inference_precision(Precision::kBf16);
  Executor& e32 = fp32.executor(kBatch, Mode::kEval);
  Executor& e16 = bf16.executor(kBatch, Mode::kEval);
  std::vector<Sample> samples;
  for (int i = 0; i < kBatch; ++i)
    samples.push_back(preprocess(generate_phantom({.count = kBatch, .seed = 5}, i), 64, 3, {}));
  std::vector<const Sample*> pointers;
  for (const Sample& s : samples) pointers.push_back(&s);
  for (Executor* e : {&e32, &e16}) {
    load_batch(*e, pointers);
    e->forward();
  }
  const std::vector<float> p32 = e32.read(e32.program().outputs.at("cls"));
  const std::vector<float> p16 = e16.read(e16.program().outputs.at("cls"));
  double worst = 0;
  for (size_t i = 0; i < p32.size(); ++i)
    worst = std::max(worst, double(std::abs(p32[i] - p16[i])));
  EXPECT_LE(worst, 1e-2);
  // Not trivially: the masks are not empty.
  const std::vector<float> seg = e32.read(e32.program().outputs.at("seg"));
  EXPECT_GT(std::count_if(seg.begin(), seg.end(), [](float p) { return p >= 0.5f; }), 0);
  const double dice = mean_dice(e32.read(e32.program().outputs.at("seg")),
                                e16.read(e16.program().outputs.at("seg")), kBatch);
  EXPECT_GE(dice, 0.99);
}

}  // namespace
}  // namespace emt
