// The graph DSL and the compiler's graph checks: every user mistake is a GraphError pointing at
// the file and line that holds it, and the real graphs in graphs/ build the published EMT-Net.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/compiler/program.h"
#include "engine/dsl/parser.h"
#include "engine/ir/graph.h"
#include "engine/ir/source_loc.h"
#include "tests/engine/expect_graph_error.h"
#include "tests/engine/temp_dir_test.h"

namespace {

namespace fs = std::filesystem;
using emt::GraphError;
using emt::Program;
using emt::Shape;
using emt::test::expect_error;

Program compile_file(const fs::path& path, const std::vector<std::string>& overrides = {},
                     int64_t batch = 1) {
  emt::GraphFile file = emt::parse_graph_file(path, overrides);
  return emt::compile(std::make_shared<const emt::Graph>(std::move(file.graph)), batch);
}

using DslTest = emt::test::TempDirTest;

void expect_parse_error(const fs::path& path, int line, const std::vector<std::string>& fragments,
                        const std::vector<std::string>& overrides = {}) {
  expect_error([&] { emt::parse_graph_file(path, overrides); }, path.filename().string(), line,
               fragments);
}

// For mistakes only the compiler can see: the file must parse.
void expect_compile_error(const fs::path& path, int line,
                          const std::vector<std::string>& fragments) {
  std::shared_ptr<const emt::Graph> graph;
  try {
    graph = std::make_shared<const emt::Graph>(emt::parse_graph_file(path).graph);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected " << path << " to parse, got: " << e.what();
    return;
  }
  expect_error([&] { emt::compile(graph, 1); }, path.filename().string(), line, fragments);
}

// ---------------------------------------------------------------------------------------------
// File-level mistakes

using DslFileErrors = DslTest;

TEST_F(DslFileErrors, TomlSyntaxErrorHasItsLine) {
  const fs::path path = write("bad.toml", R"toml(
[graph]
name = "t"
inputs = { image = [4, 8, 8] }
outputs = { y = "r" }
nodes = [
  { op = "relu", name = "r" in = "image" },
]
)toml");
  expect_parse_error(path, 6, {"not valid TOML"});
}

TEST_F(DslFileErrors, UnknownTopLevelSection) {
  const fs::path path = write("bad.toml", R"toml(
[graph]
name = "t"
inputs = { image = [4, 8, 8] }
outputs = { y = "r" }
nodes = [
  { op = "relu", name = "r", in = "image" },
]

[model]
width = 2
)toml");
  expect_parse_error(path, 9, {"unknown section 'model'", "graph", "train"});
}

TEST_F(DslFileErrors, IncludeCycle) {
  const fs::path a = write("a.toml", R"toml(
include = ["b.toml"]

[graph]
name = "t"
inputs = { image = [4, 8, 8] }
outputs = { y = "r" }
nodes = [
  { op = "relu", name = "r", in = "image" },
]
)toml");
  write("b.toml", R"toml(
# b includes a back
include = ["a.toml"]
)toml");
  expect_error([&] { emt::parse_graph_file(a); }, "b.toml", 2,
               {"include cycle", "a.toml -> b.toml -> a.toml"});
}

TEST_F(DslFileErrors, MissingInclude) {
  const fs::path path = write("main.toml", R"toml(
include = ["lib/missing.toml"]

[graph]
name = "t"
inputs = { image = [4, 8, 8] }
outputs = { y = "r" }
nodes = [
  { op = "relu", name = "r", in = "image" },
]
)toml");
  expect_parse_error(path, 1, {"missing.toml", "not found"});
}

TEST_F(DslFileErrors, DiamondIncludeIsReadOnce) {
  write("common.toml", R"toml(
[block.unit]
params = ["out"]
body = [
  { op = "conv2d", name = "conv", out = "${out}", kernel = 1 },
  { op = "relu", name = "act" },
]
)toml");
  write("x.toml", R"toml(
include = ["common.toml"]

[block.left]
params = []
body = [{ use = "unit", name = "u", args = { out = 8 } }]
)toml");
  write("y.toml", R"toml(
include = ["common.toml"]

[block.right]
params = []
body = [{ use = "unit", name = "u", args = { out = 4 } }]
)toml");
  const fs::path path = write("main.toml", R"toml(
include = ["x.toml", "y.toml"]

[graph]
name = "t"
inputs = { image = [4, 8, 8] }
outputs = { y = "r" }
nodes = [
  { use = "left", name = "l", in = "image" },
  { use = "right", name = "r" },
]
)toml");
  const emt::GraphFile file = emt::parse_graph_file(path);
  EXPECT_EQ(file.graph.files.size(), 4u);  // common.toml once
  const Program p = compile_file(path);
  EXPECT_EQ(p.values[p.outputs.at("y")].shape, (Shape{1, 4, 8, 8}));
  EXPECT_EQ(p.values[p.value("l")].shape, (Shape{1, 8, 8, 8}));
}

// ---------------------------------------------------------------------------------------------
// Node mistakes

using DslNodeErrors = DslTest;

TEST_F(DslNodeErrors, UnknownOpListsKnownOps) {
  const fs::path path = write("bad.toml", R"toml(
[graph]
name = "t"
inputs = { image = [4, 8, 8] }
outputs = { y = "r" }
nodes = [
  { op = "conv3d", name = "r", in = "image" },
]
)toml");
  expect_parse_error(path, 6, {"unknown op 'conv3d'", "known ops:", "conv2d", "relu", "dense"});
}

TEST_F(DslNodeErrors, UnknownAttribute) {
  const fs::path path = write("bad.toml", R"toml(
[graph]
name = "t"
inputs = { image = [4, 8, 8] }
outputs = { y = "r" }
nodes = [
  { op = "conv2d", name = "r", in = "image", out = 8, kernal = 3 },
]
)toml");
  expect_parse_error(path, 6, {"op 'conv2d' has no attribute 'kernal'", "kernel"});
}

TEST_F(DslNodeErrors, AttributeOfWrongType) {
  const fs::path as_string = write("string.toml", R"toml(
[graph]
name = "t"
inputs = { image = [4, 8, 8] }
outputs = { y = "r" }
nodes = [
  { op = "relu", name = "a", in = "image" },
  { op = "conv2d", name = "r", out = 8, kernel = 3, stride = "2" },
]
)toml");
  expect_parse_error(as_string, 7, {"attribute 'stride' of op 'conv2d' must be integer", "\"2\""});

  const fs::path as_float = write("float.toml", R"toml(
[graph]
name = "t"
inputs = { image = [4, 8, 8] }
outputs = { y = "r" }
nodes = [
  { op = "relu", name = "a", in = "image" },
  { op = "conv2d", name = "r", out = 8, kernel = 3, stride = 1.5 },
]
)toml");
  expect_parse_error(as_float, 7, {"attribute 'stride' of op 'conv2d' must be integer", "1.5"});
}

TEST_F(DslNodeErrors, RequiredAttributeMissing) {
  const fs::path path = write("bad.toml", R"toml(
[graph]
name = "t"
inputs = { image = [4, 8, 8] }
outputs = { y = "r" }
nodes = [
  { op = "relu", name = "a", in = "image" },
  { op = "conv2d", name = "r", out = 8 },
]
)toml");
  expect_parse_error(path, 7, {"op 'conv2d' needs attribute 'kernel'"});
}

TEST_F(DslNodeErrors, WrongNumberOfInputs) {
  const fs::path too_few = write("few.toml", R"toml(
[graph]
name = "t"
inputs = { image = [4, 8, 8] }
outputs = { y = "s" }
nodes = [
  { op = "relu", name = "a", in = "image" },
  { op = "add", name = "s", in = "a" },
]
)toml");
  expect_parse_error(too_few, 7, {"op 'add' takes 2 input(s), got 1"});

  const fs::path too_many = write("many.toml", R"toml(
[graph]
name = "t"
inputs = { image = [4, 8, 8] }
outputs = { y = "r" }
nodes = [
  { op = "relu", name = "r", in = ["image", "image"] },
]
)toml");
  expect_parse_error(too_many, 6, {"op 'relu' takes 1 input(s), got 2"});
}

TEST_F(DslNodeErrors, MissingTensorName) {
  const fs::path path = write("bad.toml", R"toml(
[graph]
name = "t"
inputs = { image = [4, 8, 8] }
outputs = { y = "r" }
nodes = [
  { op = "relu", name = "a", in = "image" },
  { op = "relu", name = "r", in = "nope" },
]
)toml");
  expect_compile_error(path, 7, {"'nope'", "no node, block or input has that name"});
}

TEST_F(DslNodeErrors, DuplicateTensorName) {
  const fs::path path = write("bad.toml", R"toml(
[graph]
name = "t"
inputs = { image = [4, 8, 8] }
outputs = { y = "r" }
nodes = [
  { op = "relu", name = "r", in = "image" },
  { op = "sigmoid", name = "r" },
]
)toml");
  expect_parse_error(path, 7, {"duplicate tensor name 'r'", "first defined at", "bad.toml:6:"});
}

TEST_F(DslNodeErrors, Cycle) {
  const fs::path path = write("bad.toml", R"toml(
[graph]
name = "t"
inputs = { image = [4, 8, 8] }
outputs = { y = "b" }
nodes = [
  { op = "relu", name = "a", in = "b" },
  { op = "relu", name = "b", in = "a" },
]
)toml");
  expect_compile_error(path, 6, {"cycle in the graph", "a <- b <- a"});
}

TEST_F(DslNodeErrors, AddShapeMismatch) {
  const fs::path path = write("bad.toml", R"toml(
[graph]
name = "t"
inputs = { image = [4, 8, 8] }
outputs = { y = "s" }
nodes = [
  { op = "conv2d", name = "c", in = "image", out = 8, kernel = 1 },
  { op = "add", name = "s", in = ["c", "image"] },
]
)toml");
  expect_compile_error(path, 7, {"'add'", "[1,8,8,8]", "[1,4,8,8]"});
}

// ---------------------------------------------------------------------------------------------
// Blocks

using DslBlockErrors = DslTest;

// A block library whose [graph] node on line 13 is `use_line`.
std::string block_file(const std::string& body_attr, const std::string& use_line) {
  return R"toml(
[block.unit]
params = ["out"]
body = [
  { op = "conv2d", name = "conv", out = )toml" +
         body_attr + R"toml(, kernel = 1 },
  { op = "relu", name = "act" },
]

[graph]
name = "t"
inputs = { image = [4, 8, 8] }
outputs = { y = "b" }
nodes = [
  )toml" +
         use_line +
         R"toml(
]
)toml";
}

TEST_F(DslBlockErrors, ValidUseExpands) {
  const fs::path path =
      write("good.toml",
            block_file("\"${out}\"",
                       R"({ use = "unit", name = "b", in = "image", args = { out = 8 } },)"));
  const Program p = compile_file(path);
  EXPECT_EQ(p.graph->aliases.at("b"), "b.act");
  EXPECT_EQ(p.values[p.value("b.conv")].shape, (Shape{1, 8, 8, 8}));
  EXPECT_EQ(p.values[p.outputs.at("y")].shape, (Shape{1, 8, 8, 8}));
}

TEST_F(DslBlockErrors, UnknownBlock) {
  const fs::path path = write(
      "bad.toml", block_file("\"${out}\"", R"({ use = "nosuch", name = "b", in = "image" },)"));
  expect_parse_error(path, 13, {"unknown block 'nosuch'", "unit"});
}

TEST_F(DslBlockErrors, UnknownParameterInArgs) {
  const fs::path path = write(
      "bad.toml",
      block_file("\"${out}\"",
                 R"({ use = "unit", name = "b", in = "image", args = { out = 8, width = 2 } },)"));
  expect_parse_error(path, 13, {"block 'unit' has no parameter 'width'"});
}

TEST_F(DslBlockErrors, MissingArgument) {
  const fs::path path =
      write("bad.toml", block_file("\"${out}\"", R"({ use = "unit", name = "b", in = "image" },)"));
  expect_parse_error(path, 13, {"block 'unit' needs argument 'out'"});
}

TEST_F(DslBlockErrors, UnknownParameterInBody) {
  const fs::path path = write(
      "bad.toml", block_file("\"${oops}\"",
                             R"({ use = "unit", name = "b", in = "image", args = { out = 8 } },)"));
  expect_parse_error(path, 4, {"unknown parameter '${oops}'", "block 'unit'", "out"});
}

TEST_F(DslBlockErrors, BlockDefinedTwice) {
  write("lib.toml", R"toml(
# the first definition
[block.unit]
params = []
body = [{ op = "relu", name = "act" }]
)toml");
  const fs::path path = write("main.toml", R"toml(
include = ["lib.toml"]

[block.unit]
params = []
body = [{ op = "sigmoid", name = "act" }]

[graph]
name = "t"
inputs = { image = [4, 8, 8] }
outputs = { y = "b" }
nodes = [{ use = "unit", name = "b", in = "image" }]
)toml");
  expect_parse_error(path, 3, {"block 'unit' is already defined at", "lib.toml:2:"});
}

// ---------------------------------------------------------------------------------------------
// Settings

using DslSettings = DslTest;

constexpr std::string_view kSettingsGraph = R"toml(
[graph]
name = "t"
inputs = { image = [4, 8, 8] }
outputs = { y = "r" }
nodes = [
  { op = "relu", name = "r", in = "image" },
]

[train]
)toml";

TEST_F(DslSettings, UnknownSettingInTrain) {
  const fs::path path = write("bad.toml", std::string(kSettingsGraph) + "epochs = 3\nepohcs = 3\n");
  expect_parse_error(path, 11, {"unknown setting 'train.epohcs'", "train.epochs"});
}

TEST_F(DslSettings, SettingOfWrongType) {
  const fs::path path = write("bad.toml", std::string(kSettingsGraph) + "epochs = \"three\"\n");
  expect_parse_error(path, 10, {"setting 'train.epochs' must be integer"});
}

TEST_F(DslSettings, FileSettingIsApplied) {
  const fs::path path = write("good.toml", std::string(kSettingsGraph) + "epochs = 5\nlr = 1\n");
  const emt::GraphFile file = emt::parse_graph_file(path);
  EXPECT_EQ(file.config.get_int("train.epochs"), 5);
  EXPECT_EQ(file.config.where("train.epochs").line, 10);
  EXPECT_DOUBLE_EQ(file.config.get_float("train.lr"), 1.0);  // an integer where a float is due
}

TEST_F(DslSettings, SetOverrideIsApplied) {
  const fs::path path = write("good.toml", std::string(kSettingsGraph) + "epochs = 5\n");
  const emt::GraphFile file = emt::parse_graph_file(path, {"train.epochs=3"});
  EXPECT_EQ(file.config.get_int("train.epochs"), 3);
  EXPECT_EQ(file.config.where("train.epochs").file, "<command line --set>");
}

TEST_F(DslSettings, SetOverrideErrors) {
  const fs::path path = write("good.toml", std::string(kSettingsGraph) + "epochs = 5\n");
  auto expect_set_error = [&](const std::string& assignment, const std::string& fragment) {
    try {
      emt::parse_graph_file(path, {assignment});
      ADD_FAILURE() << "--set " << assignment << " was accepted";
    } catch (const GraphError& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.rfind("<command line --set>", 0), 0u) << what;
      EXPECT_NE(what.find(fragment), std::string::npos) << what;
    }
  };
  expect_set_error("train.epohcs=3", "unknown setting 'train.epohcs'");
  expect_set_error("train.epochs=three", "setting 'train.epochs' must be integer, got 'three'");
  expect_set_error("train.lr=fast", "setting 'train.lr' must be float");
}

// ---------------------------------------------------------------------------------------------
// Objective

using DslObjective = DslTest;

std::string objective_file(const std::string& term) {
  return R"toml(
[graph]
name = "t"
inputs = { image = [4, 8, 8] }
targets = { label = [1], mask = [1, 8, 8] }
outputs = { y = "r" }
nodes = [
  { op = "relu", name = "r", in = "image" },
]

[objective]
terms = [
  )toml" +
         term +
         R"toml(
]
)toml";
}

TEST_F(DslObjective, UnknownLossKind) {
  const fs::path path =
      write("bad.toml", objective_file(R"({ loss = "focal", input = "r", target = "label" },)"));
  expect_parse_error(path, 12, {"unknown loss 'focal'", "weighted_bce", "dice"});
}

TEST_F(DslObjective, TargetMustBeDeclared) {
  const fs::path path =
      write("bad.toml", objective_file(R"({ loss = "dice", input = "r", target = "r" },)"));
  expect_compile_error(path, 12, {"objective target 'r' must be one of [graph] targets"});
}

TEST_F(DslObjective, InputAndTargetSizesDiffer) {
  const fs::path path =
      write("bad.toml", objective_file(R"({ loss = "dice", input = "r", target = "mask" },)"));
  expect_compile_error(path, 12, {"'r' [1,4,8,8]", "'mask' [1,1,8,8]", "sizes differ"});
}

// ---------------------------------------------------------------------------------------------
// The real graphs

fs::path graphs_dir() {
  const char* source = std::getenv("EMT_SOURCE_DIR");
  return (source && *source ? fs::path(source) : fs::current_path()) / "graphs";
}

TEST(DslRealGraphs, EmtNetAt224MatchesTheReferenceModel) {
  const fs::path path = graphs_dir() / "emtnet.toml";
  ASSERT_TRUE(fs::exists(path)) << path << " (set EMT_SOURCE_DIR)";
  const Program p = compile_file(path, {"data.input_size=224"}, 1);

  // ../shared/reference/emtnet_ref.onnx: 5,125,794 parameters, 1,083.7 M MACs per image.
  EXPECT_EQ(p.trainable_param_count(), 5125794);
  EXPECT_NEAR(static_cast<double>(p.macs_per_sample()), 1083.7e6, 0.01 * 1083.7e6);

  EXPECT_EQ(p.values[p.outputs.at("seg")].shape, (Shape{1, 1, 224, 224}));
  EXPECT_EQ(p.values[p.outputs.at("cls")].shape, (Shape{1, 1}));

  const std::vector<std::pair<std::string, Shape>> skips = {
      {"seg.skip1", {1, 64, 112, 112}},
      {"seg.skip2", {1, 128, 56, 56}},
      {"seg.skip3", {1, 256, 28, 28}},
      {"seg.skip4", {1, 512, 14, 14}},
  };
  for (const auto& [name, shape] : skips) {
    ASSERT_TRUE(p.value_index.count(name)) << name;
    EXPECT_EQ(p.values[p.value(name)].shape, shape) << name;
    EXPECT_EQ(p.steps[p.values[p.value(name)].producer].node->op, "add") << name;
  }

  const auto& aliases = p.graph->aliases;
  for (int i = 1; i <= 13; ++i)
    EXPECT_TRUE(aliases.count("backbone.ds" + std::to_string(i))) << "backbone.ds" << i;
  EXPECT_FALSE(aliases.count("backbone.ds14"));
  for (int i = 1; i <= 4; ++i)
    EXPECT_TRUE(aliases.count("seg.dec" + std::to_string(i))) << "seg.dec" << i;
  EXPECT_EQ(p.values[p.value("backbone")].shape, (Shape{1, 1024, 7, 7}));
}

TEST(DslRealGraphs, SingleTaskBaselinesCompile) {
  const Program clf = compile_file(graphs_dir() / "single_clf.toml", {}, 2);
  EXPECT_EQ(clf.values[clf.outputs.at("cls")].shape, (Shape{2, 1}));
  EXPECT_EQ(clf.outputs.count("seg"), 0u);

  const Program sgm = compile_file(graphs_dir() / "single_sgm.toml", {}, 2);
  EXPECT_EQ(sgm.values[sgm.outputs.at("seg")].shape, (Shape{2, 1, 64, 64}));
  EXPECT_EQ(sgm.outputs.count("cls"), 0u);
}

}  // namespace
