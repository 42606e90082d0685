// The nesting guard that runs before toml11 (which recurses per level and overflows the stack a
// few thousand levels down): deep arrays and inline tables are refused at their line and column,
// brackets in strings and comments do not count, and real graphs pass.
#include "engine/dsl/toml_depth.h"

#include <gtest/gtest.h>

#include <string>

#include "engine/dsl/parser.h"
#include "engine/ir/source_loc.h"
#include "tests/engine/temp_dir_test.h"

namespace {

using emt::GraphError;

constexpr int kDeep = 5000;

std::string repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

// `depth` arrays inside one another, as a value: [[[ ... ]]].
std::string nested_arrays(int depth) { return repeat("[", depth) + repeat("]", depth); }

// `depth` inline tables inside one another: { a = { a = ... 1 } }.
std::string nested_tables(int depth) { return repeat("{ a = ", depth) + "1" + repeat(" }", depth); }

// The message of the GraphError that check_toml_nesting throws, or "" when it accepts the text.
std::string nesting_error(const std::string& text, int max_depth = emt::kMaxTomlNesting) {
  try {
    emt::check_toml_nesting(text, "deep.toml", max_depth);
  } catch (const GraphError& e) {
    return e.what();
  }
  return "";
}

const std::string kTooDeep = "TOML nesting deeper than 128";

TEST(TomlDepth, DeepArraysAreRefusedAtTheBracketThatGoesTooDeep) {
  // Line 3; the 129th '[' is column 5 + 128 ("x = " takes 4 columns).
  const std::string text = "# arrays\n[table]\nx = " + nested_arrays(kDeep) + "\n";
  EXPECT_EQ(nesting_error(text), "deep.toml:3:133: error: " + kTooDeep);
}

TEST(TomlDepth, DeepInlineTablesAreRefused) {
  // "{ a = " is 6 columns; the 129th '{' starts at 5 + 128 * 6.
  const std::string text = "\n\nx = " + nested_tables(kDeep) + "\n";
  EXPECT_EQ(nesting_error(text),
            "deep.toml:3:" + std::to_string(5 + 128 * 6) + ": error: " + kTooDeep);
}

TEST(TomlDepth, MixedNestingCountsBothKinds) {
  // 64 arrays, each holding an inline table: 128 levels pass, one more does not.
  std::string ok = "x = ", too_deep = "x = ";
  for (int i = 0; i < 64; ++i) ok += "[{ a = ";
  for (int i = 0; i < 64; ++i) ok += "1 }]";
  too_deep += "[" + ok.substr(4) + "]";
  EXPECT_EQ(nesting_error(ok), "");
  EXPECT_NE(nesting_error(too_deep).find(kTooDeep), std::string::npos);
}

TEST(TomlDepth, TheLimitItselfIsAccepted) {
  EXPECT_EQ(nesting_error("x = " + nested_arrays(128)), "");
  EXPECT_EQ(nesting_error("x = " + nested_arrays(129)), "deep.toml:1:133: error: " + kTooDeep);
  // Closing brackets bring the depth down again: many shallow arrays in a row are fine.
  EXPECT_EQ(nesting_error("x = [" + repeat(nested_arrays(100) + ", ", 50) + "]"), "");
}

TEST(TomlDepth, LongDottedKeysAreRefused) {
  std::string key = "a";
  for (int i = 0; i < 128; ++i) key += ".a";  // 128 dots: 129 parts
  EXPECT_EQ(nesting_error("\n" + key + " = 1\n"),
            "deep.toml:2:" + std::to_string(128 * 2) + ": error: " + kTooDeep);
  EXPECT_EQ(nesting_error("[" + key + "]\n"),
            "deep.toml:1:" + std::to_string(128 * 2 + 1) + ": error: " + kTooDeep);
  // 127 dots pass, and so do floats and dotted keys in every row of a long table.
  const std::string ok_key = key.substr(2);
  EXPECT_EQ(nesting_error(ok_key + " = 1.5\n[" + ok_key + "]\nx = [1.5, 2.5]\n" +
                          repeat("a.b = 1.5\n", 200)),
            "");
  // A dot inside a quoted key part is a letter.
  EXPECT_EQ(nesting_error("\"" + key + "\" = 1\n"), "");
}

TEST(TomlDepth, BracketsInStringsAndCommentsDoNotCount) {
  const std::string deep = nested_arrays(kDeep), open = repeat("[{", kDeep);
  EXPECT_EQ(nesting_error("a = \"" + deep + "\"\n"), "");
  EXPECT_EQ(nesting_error("a = '" + open + "'\n"), "");
  EXPECT_EQ(nesting_error("a = \"\"\"\n" + open + "\n\"\"\"\n"), "");
  EXPECT_EQ(nesting_error("a = '''" + open + "\n" + open + "'''\n"), "");
  EXPECT_EQ(nesting_error("# " + open + "\na = 1 # " + open + "\n"), "");
  // An escaped quote does not end a basic string; in a literal string a backslash is a letter.
  EXPECT_EQ(nesting_error("a = \"\\\"" + open + "\"\n"), "");
  EXPECT_EQ(nesting_error("a = 'C:\\'\nb = " + nested_arrays(129)),
            "deep.toml:2:133: error: " + kTooDeep);
  // A multi-line string may end in up to two quotes of its own before the closing three (read
  // as the start of a string, the fourth quote would hide the arrays after it).
  EXPECT_EQ(nesting_error("a = [\"\"\"x\"\"\"\", " + nested_arrays(128) + "]"),
            "deep.toml:1:143: error: " + kTooDeep);
  // A quoted key and a table header with brackets in its quoted name.
  EXPECT_EQ(nesting_error("[\"" + open + "\"]\n\"" + open + "\" = 1\n"), "");
}

TEST(TomlDepth, LinesInsideMultiLineStringsAreCounted) {
  const std::string text =
      "a = \"\"\"\none [\ntwo {\n\"\"\"\nb = '''\n'''\nx = " + nested_arrays(kDeep) + "\n";
  EXPECT_EQ(nesting_error(text), "deep.toml:7:133: error: " + kTooDeep);
}

using TomlDepthFiles = emt::test::TempDirTest;

// The guard runs on every text the parser reads: the main text and each included file.
TEST_F(TomlDepthFiles, EveryEntryIsGuarded) {
  const std::string graph = R"toml(
[graph]
name = "t"
inputs = { image = [4, 8, 8] }
outputs = { y = "r" }
nodes = [
  { op = "relu", name = "r", in = "image" },
]
)toml";
  const std::string deep_line = "[train]\nlr = " + nested_tables(kDeep) + "\n";
  const auto message = [](const auto& parse) -> std::string {
    try {
      parse();
    } catch (const GraphError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message([&] {
              emt::parse_graph_text(deep_line + graph, "text.toml");
            }).find("text.toml:2:" + std::to_string(6 + 128 * 6) + ": error: " + kTooDeep),
            std::string::npos);
  write("deep.toml", deep_line);
  const auto main = write("main.toml", "include = [\"deep.toml\"]\n" + graph);
  EXPECT_NE(message([&] { emt::parse_graph_file(main); }).find("deep.toml:2:"), std::string::npos);
  // The same graph, not nested, parses.
  const auto ok = write("ok.toml", graph);
  EXPECT_EQ(emt::parse_graph_file(ok).graph.nodes.size(), 1u);
}

TEST(TomlDepth, TheShippedGraphsPass) {
  for (const char* path : {"graphs/emtnet.toml", "graphs/single_clf.toml", "graphs/single_sgm.toml",
                           "graphs/mobilenet_v1_075_classifier.toml"})
    EXPECT_NO_THROW(emt::parse_graph_file(path)) << path;
}

}  // namespace
