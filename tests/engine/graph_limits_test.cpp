// Graph files that would make the engine recurse forever, allocate without bound or take
// quadratic time are refused (or read) promptly, with the file and line of the cause.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "engine/compiler/memory_plan.h"
#include "engine/compiler/program.h"
#include "engine/dsl/parser.h"
#include "engine/dsl/toml_util.h"
#include "tests/engine/expect_graph_error.h"
#include "tests/engine/temp_dir_test.h"

namespace {

namespace fs = std::filesystem;
using emt::test::expect_error;
using GraphLimits = emt::test::TempDirTest;

const char* kHeader = R"toml(
[graph]
name = "t"
inputs = { image = [4, 8, 8] }
outputs = { y = "last" }
nodes = [
)toml";

std::shared_ptr<const emt::Graph> parse(const fs::path& path,
                                        const std::vector<std::string>& overrides = {}) {
  return std::make_shared<const emt::Graph>(emt::parse_graph_file(path, overrides).graph);
}

// `count` relus, each reading the one before; the last is named "last".
std::string relu_chain(int count) {
  std::string text = std::string(kHeader).substr(1) + "  { op = \"relu\", in = \"image\" },\n";
  for (int i = 1; i + 1 < count; ++i) text += "  { op = \"relu\" },\n";
  return text + "  { op = \"relu\", name = \"last\" },\n]\n";
}

TEST_F(GraphLimits, BlockThatUsesItself) {
  const fs::path path = write(
      "loop.toml", std::string(kHeader) + R"toml(  { use = "loop", in = "image", name = "last" },
]

[block.loop]
body = [
  { op = "relu" },
  { use = "loop" },
]
)toml");
  expect_error([&] { parse(path); }, "loop.toml", 12, {"block 'loop' uses itself: loop -> loop"});
}

TEST_F(GraphLimits, BlocksThatUseEachOther) {
  const fs::path path = write(
      "mutual.toml", std::string(kHeader) + R"toml(  { use = "a", in = "image", name = "last" },
]

[block.a]
body = [{ use = "b" }]

[block.b]
body = [{ op = "relu" }, { use = "a" }]
)toml");
  expect_error([&] { parse(path); }, "mutual.toml", 13, {"block 'a' uses itself: a -> b -> a"});
}

// 40 blocks, each using the one before twice: 2^40 relus, counted (not built) and refused.
TEST_F(GraphLimits, ExponentialExpansionIsCountedBeforeItIsBuilt) {
  std::string text =
      std::string(kHeader) + "  { use = \"b40\", in = \"image\", name = \"last\" },\n]\n";
  text += "\n[block.b0]\nbody = [{ op = \"relu\" }]\n";
  for (int i = 1; i <= 40; ++i)
    text += "\n[block.b" + std::to_string(i) + "]\nbody = [{ use = \"b" + std::to_string(i - 1) +
            "\" }, { use = \"b" + std::to_string(i - 1) + "\" }]\n";
  const fs::path path = write("doubling.toml", text);
  expect_error([&] { parse(path); }, "doubling.toml", 5,
               {"expands to 1099511627776 nodes", "limits.max_graph_nodes = 1000000"});
}

TEST_F(GraphLimits, NestingDepthHasALimitTheCommandLineRaises) {
  std::string text =
      std::string(kHeader) + "  { use = \"b70\", in = \"image\", name = \"last\" },\n]\n";
  text += "\n[block.b0]\nbody = [{ op = \"relu\" }]\n";
  for (int i = 1; i <= 70; ++i)
    text += "\n[block.b" + std::to_string(i) + "]\nbody = [{ use = \"b" + std::to_string(i - 1) +
            "\" }]\n";
  const fs::path path = write("deep.toml", text);
  expect_error([&] { parse(path); }, "deep.toml", 31,
               {"blocks nest more than 64 deep: b70 -> b69", "limits.max_block_depth"});
  const auto graph = parse(path, {"limits.max_block_depth=71"});
  EXPECT_EQ(graph->nodes.size(), 1u);
}

TEST_F(GraphLimits, NodeCountLimitIsExactAndRaisedOnlyFromTheCommandLine) {
  const fs::path path = write("four.toml", relu_chain(4));
  expect_error([&] { parse(path, {"limits.max_graph_nodes=3"}); }, "four.toml", 5,
               {"expands to 4 nodes", "limits.max_graph_nodes = 3"});
  EXPECT_EQ(parse(path, {"limits.max_graph_nodes=4"})->nodes.size(), 4u);

  const fs::path lifted = write("lifted.toml", relu_chain(4) + "\n[limits]\nmax_graph_nodes = 9\n");
  expect_error([&] { parse(lifted); }, "lifted.toml", 13,
               {"can only be raised on the command line", "--set limits.max_graph_nodes"});
  EXPECT_THROW(parse(path, {"limits.max_graph_nodes=0"}), emt::GraphError);
}

// A quadratic pass would take minutes here (the ctest timeout bounds it); the last node's
// location must still be its own line, as toml11's own (slow) location lookup says.
TEST_F(GraphLimits, LongChainIsReadAndOrderedAndLocatedCorrectly) {
  const int count = 200'000;
  const fs::path path = write("chain.toml", relu_chain(count));
  const auto graph = parse(path);
  ASSERT_EQ(graph->nodes.size(), static_cast<size_t>(count));
  EXPECT_EQ(graph->nodes.back().loc.line, count + 5);
  EXPECT_EQ(graph->nodes.back().loc.column, 3);
  const emt::Program program = emt::compile(graph, 1);
  ASSERT_EQ(program.steps.size(), static_cast<size_t>(count));
  for (int i = 0; i < count; i += 9973) EXPECT_EQ(program.steps[i].node, &graph->nodes[i]);
  // Inference: the image (an input, live throughout) and two buffers the relus alternate
  // between, 256 floats each; training keeps every value.
  EXPECT_EQ(emt::plan_memory(program, emt::Lifetime::kInference).arena_floats, 3 * 256);
  EXPECT_EQ(emt::plan_memory(program, emt::Lifetime::kTraining).arena_floats,
            int64_t{count + 1} * 256);
}

TEST_F(GraphLimits, LocationsAgreeWithToml11s) {
  const fs::path path = write("locs.toml", relu_chain(6) + "\n[train]\n  epochs = 3\nlr = 0.1\n");
  const toml::value root = toml::parse(path.string());
  std::vector<const toml::value*> values{
      &root.at("graph").at("nodes"), &root.at("train").at("epochs"), &root.at("train").at("lr")};
  for (const toml::value& node : root.at("graph").at("nodes").as_array()) {
    values.push_back(&node);
    values.push_back(&node.at("op"));
  }
  for (const toml::value* v : values) {
    const emt::SourceLoc ours = emt::loc_of(*v);
    const toml::source_location theirs = v->location();
    EXPECT_EQ(ours.file, theirs.file_name());
    EXPECT_EQ(ours.line, static_cast<int>(theirs.line()));
    EXPECT_EQ(ours.column, static_cast<int>(theirs.column()));
  }
}

// A cycle through every node of a long chain is reported without a quadratic walk.
TEST_F(GraphLimits, LongCycleIsReported) {
  std::string text =
      std::string(kHeader).substr(1) + "  { op = \"add\", in = [\"image\", \"last\"] },\n";
  for (int i = 0; i < 50'000; ++i) text += "  { op = \"relu\" },\n";
  text += "  { op = \"relu\", name = \"last\" },\n]\n";
  const fs::path path = write("cycle.toml", text);
  expect_error([&] { emt::compile(parse(path), 1); }, "cycle.toml", 6, {"cycle in the graph"});
}

TEST_F(GraphLimits, OversizedTensorIsRefusedAtCompileNamingNodeAndShape) {
  const fs::path path = write("wide.toml", R"toml(
[graph]
name = "t"
inputs = { image = [3, 1024, 1024] }
outputs = { y = "last" }
nodes = [
  { op = "conv2d", name = "last", in = "image", out = 1048576, kernel = 1 },
]
)toml");
  expect_error([&] { emt::compile(parse(path), 1); }, "wide.toml", 6,
               {"node 'last' output [1,1048576,1024,1024] has 1099511627776 elements",
                "limits.max_tensor_elements = 1073741824"});
  const fs::path huge = write("huge.toml", R"toml(
[graph]
name = "t"
inputs = { image = [4611686018427387904, 4] }
outputs = { y = "last" }
nodes = [
  { op = "relu", name = "last", in = "image" },
]
)toml");
  expect_error([&] { emt::compile(parse(huge), 1); }, "huge.toml", 3,
               {"input 'image'", "overflows 64-bit sizes"});
}

TEST_F(GraphLimits, ArenaBeyondItsLimitIsRefusedBeforeAllocation) {
  const fs::path path = write("small.toml", relu_chain(3));
  // Four values of 4 * 8 * 8 floats (aligned): 4 KiB while training, less for inference.
  const auto graph = parse(path, {"limits.max_arena_bytes=2048"});
  const emt::Program program = emt::compile(graph, 1);
  expect_error([&] { emt::plan_memory(program, emt::Lifetime::kTraining); }, "small.toml", 1,
               {"training activation arena of 4096 bytes", "limits.max_arena_bytes = 2048"});
  EXPECT_NO_THROW(emt::plan_memory(emt::compile(parse(path), 1), emt::Lifetime::kTraining));
}

}  // namespace
