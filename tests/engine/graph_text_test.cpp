// parse_graph_text: graph text held in memory reads as the same text in a file does, and its
// messages, includes and file list go by the name it is given.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "engine/compiler/program.h"
#include "engine/dsl/parser.h"
#include "engine/ir/source_loc.h"
#include "tests/engine/temp_dir_test.h"

namespace {

using GraphText = emt::test::TempDirTest;

const std::string kGraph = R"toml([graph]
name = "t"
inputs = { image = [4, 8, 8] }
outputs = { y = "r" }
nodes = [
  { op = "conv2d", name = "c", in = "image", out = 6, kernel = 3, pad = 1 },
  { op = "relu", name = "r" },
]

[train]
epochs = 2
)toml";

// The first line of the GraphError that parsing `text` throws; "" when it parses.
std::string first_error_line(const std::string& text, const std::string& name) {
  try {
    emt::parse_graph_text(text, name);
  } catch (const emt::GraphError& e) {
    const std::string what = e.what();
    return what.substr(0, what.find('\n'));
  }
  return "";
}

TEST_F(GraphText, ReadsAsTheSameTextInAFile) {
  const emt::GraphFile from_text = emt::parse_graph_text(kGraph, "memory.toml", {"train.epochs=5"});
  const emt::GraphFile from_file =
      emt::parse_graph_file(write("g.toml", kGraph), {"train.epochs=5"});
  ASSERT_EQ(from_text.graph.nodes.size(), 2u);
  ASSERT_EQ(from_file.graph.nodes.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(from_text.graph.nodes[i].name, from_file.graph.nodes[i].name);
    EXPECT_EQ(from_text.graph.nodes[i].op, from_file.graph.nodes[i].op);
    EXPECT_EQ(from_text.graph.nodes[i].loc.line, from_file.graph.nodes[i].loc.line);
  }
  EXPECT_EQ(from_text.graph.nodes[0].loc.file, "memory.toml");
  EXPECT_EQ(from_text.graph.files, std::vector<std::string>{"memory.toml"});
  EXPECT_EQ(from_text.config.get_int("train.epochs"), 5);  // the override beats the file's 2
  const emt::Program p =
      emt::compile(std::make_shared<const emt::Graph>(from_text.graph), /*batch=*/2);
  EXPECT_EQ(p.values[p.outputs.at("y")].shape, (emt::Shape{2, 6, 8, 8}));
}

TEST_F(GraphText, MessagesCarryTheNameAndLine) {
  std::string syntax = kGraph;
  syntax.replace(syntax.find("name = \"r\""), 10, "name = \"r\" in = \"c\"");  // no comma
  EXPECT_EQ(first_error_line(syntax, "model.onnx (imported graph)")
                .rfind("model.onnx (imported graph):7:", 0),
            0u)
      << first_error_line(syntax, "model.onnx (imported graph)");
  std::string unknown_op = kGraph;
  unknown_op.replace(unknown_op.find("\"relu\""), 6, "\"rleu\"");
  EXPECT_EQ(first_error_line(unknown_op, "g").rfind("g:7:", 0), 0u)
      << first_error_line(unknown_op, "g");
  EXPECT_EQ(first_error_line("[train]\nepochs = 1\n", "g"),
            "g: error: no [graph] section: nothing to build");
}

TEST_F(GraphText, IncludesAreFoundBesideTheName) {
  write("lib/blocks.toml", R"toml(
[block.unit]
params = ["out"]
body = [{ op = "conv2d", name = "conv", out = "${out}", kernel = 1 }]
)toml");
  const std::string text = R"toml(include = ["lib/blocks.toml"]

[graph]
name = "t"
inputs = { image = [4, 8, 8] }
outputs = { y = "u" }
nodes = [{ use = "unit", name = "u", in = "image", args = { out = 3 } }]
)toml";
  // The name need not exist as a file; only its directory is used.
  const emt::GraphFile file = emt::parse_graph_text(text, (dir_ / "virtual.toml").string());
  ASSERT_EQ(file.graph.files.size(), 2u);
  EXPECT_EQ(file.graph.files[1], (dir_ / "lib/blocks.toml").string());
  EXPECT_EQ(first_error_line(text, "elsewhere/virtual.toml"),
            "elsewhere/virtual.toml:1:12: error: included graph file "
            "'elsewhere/lib/blocks.toml' not found");
}

}  // namespace
