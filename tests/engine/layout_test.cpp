// Layout assignment (engine/compiler/layout.cpp): which activations the oneDNN plan keeps
// channel-blocked, and that what the engine reads stays plain.
#include "engine/compiler/layout.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "engine/dsl/parser.h"
#include "engine/runtime/model.h"

namespace emt {
namespace {

std::string graph_path(const std::string& name) {
  const char* root = std::getenv("EMT_SOURCE_DIR");
  return std::string(root ? root : ".") + "/graphs/" + name;
}

Program compile_emtnet(Backend backend, CompileOptions options = {}) {
  const GraphFile file = parse_graph_file(graph_path("emtnet.toml"), {"data.input_size=64"});
  return compile(std::make_shared<const Graph>(file.graph), 2, backend, options);
}

int blocked_count(const Program& p) {
  int n = 0;
  for (const ValueInfo& v : p.values) n += v.layout == Layout::kChannelBlocked;
  return n;
}

TEST(Layouts, EngineFacingValuesStayPlainAndUniformOpsAgree) {
  for (bool fuse : {false, true}) {
    const Program p = compile_emtnet(Backend::kOnednn, {.fuse = fuse});
    EXPECT_GT(blocked_count(p), static_cast<int>(p.values.size()) / 2) << "fuse " << fuse;
    for (const auto& [name, v] : p.outputs) EXPECT_EQ(p.values[v].layout, Layout::kPlain) << name;
    for (const LossTerm& t : p.graph->objective.terms)
      EXPECT_EQ(p.values[p.value(t.input)].layout, Layout::kPlain) << t.input;
    for (const ValueInfo& v : p.values) {
      if (v.layout != Layout::kChannelBlocked) continue;
      EXPECT_EQ(v.kind, ValueKind::kActivation) << v.name;
      EXPECT_TRUE(can_block_channels(v.shape)) << v.name;
      EXPECT_NE(p.steps[v.producer].layouts, LayoutPolicy::kPlainOnly) << v.name;
      for (int c : v.consumers)
        EXPECT_NE(p.steps[c].layouts, LayoutPolicy::kPlainOnly)
            << v.name << " read by " << p.steps[c].node->name;
    }
    for (const Step& s : p.steps) {
      if (s.layouts != LayoutPolicy::kUniform) continue;
      const Layout out = p.values[s.output].layout;
      for (int v : s.inputs) EXPECT_EQ(p.values[v].layout, out) << s.node->name;
    }
  }
  // The stem reads the plain image and writes blocked; the mask logit (1 channel) is plain.
  const Program p = compile_emtnet(Backend::kOnednn);
  EXPECT_EQ(p.values[p.value("image")].layout, Layout::kPlain);
  EXPECT_EQ(p.values[p.value("backbone.stem.conv")].layout, Layout::kChannelBlocked);
  EXPECT_EQ(p.values[p.value("seg.logit")].layout, Layout::kPlain);
}

TEST(Layouts, ReferenceBackendAndTheSwitchOffKeepEverythingPlain) {
  EXPECT_EQ(blocked_count(compile_emtnet(Backend::kReference)), 0);
  EXPECT_EQ(blocked_count(compile_emtnet(Backend::kOnednn, {.blocked_layouts = false})), 0);
}

TEST(Layouts, ReadReturnsPlainDataOfABlockedValue) {
  const GraphFile file = parse_graph_file(graph_path("emtnet.toml"), {"data.input_size=64"});
  Model fast(file, 3, Backend::kOnednn), ref(file, 3, Backend::kReference);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> pixel(-1, 1);
  std::vector<float> image(static_cast<size_t>(2 * 3 * 64 * 64));
  for (float& v : image) v = pixel(rng);
  std::vector<std::vector<float>> values;
  // A training plan keeps every value to the end (an inference plan reuses their bytes).
  for (Model* m : {&fast, &ref}) {
    Executor& e = m->executor(2, Mode::kTrain);
    std::copy(image.begin(), image.end(), e.value("image").data);
    e.forward();
    values.push_back(e.read("backbone.ds5"));
  }
  ASSERT_EQ(fast.executor(2, Mode::kTrain).value("backbone.ds5").layout, Layout::kChannelBlocked);
  ASSERT_EQ(values[0].size(), values[1].size());
  double worst = 0, scale = 0;
  for (size_t i = 0; i < values[0].size(); ++i) {
    worst = std::max(worst, double(std::abs(values[0][i] - values[1][i])));
    scale = std::max(scale, double(std::abs(values[1][i])));
  }
  EXPECT_LT(worst, 1e-4 * (1 + scale));
}

TEST(Layouts, BlockingRoundTripsAndPutsChannelsInnermost) {
  const Shape shape{2, 32, 3, 5};
  std::vector<float> plain(static_cast<size_t>(shape_numel(shape))), blocked(plain.size()),
      back(plain.size());
  for (size_t i = 0; i < plain.size(); ++i) plain[i] = static_cast<float>(i);
  block_channels(plain.data(), shape, blocked.data());
  // Element (n=1, c=17, h=2, w=3): block 1, lane 1, at ((1*2 + 1)*15 + 2*5 + 3)*16 + 1.
  EXPECT_EQ(blocked[((1 * 2 + 1) * 15 + 2 * 5 + 3) * 16 + 1],
            plain[((1 * 32 + 17) * 3 + 2) * 5 + 3]);
  unblock_channels(blocked.data(), shape, back.data());
  EXPECT_EQ(back, plain);
  EXPECT_FALSE(can_block_channels({2, 17, 3, 5}));
  EXPECT_FALSE(can_block_channels({2, 32}));
}

}  // namespace
}  // namespace emt
