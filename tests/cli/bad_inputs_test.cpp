// The bad-input catalogue (tests/bad_inputs/README.md) through the real command lines: every
// entry must end by itself within the time bound, under a 4 GB address-space cap, with no
// signal, its exit code and its message. The README table must list every entry as it is here.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "tests/cli/bad_input_files.h"
#include "tests/cli/bounded_run.h"

namespace {

namespace fs = std::filesystem;

struct Entry {
  std::string name;
  // argv; argv[0] is "engine" or "mobile_bench", a word starting with @ a file of the catalogue
  std::vector<std::string> args;
  int exit_code;
  std::string message;  // a fragment the output must hold
};

// GoogleTest prints a parameter into the ctest name; without this it prints the struct's bytes,
// pointers included, so that names changed from build to build.
void PrintTo(const Entry& entry, std::ostream* out) { *out << entry.name; }

const std::vector<std::string> kPredict = {"--threads", "1", "--backend", "reference"};

Entry check(std::string name, std::string graph, int code, std::string message) {
  return {std::move(name), {"engine", "check", "@" + graph}, code, std::move(message)};
}

Entry predict(std::string name, std::string weights, std::string data, int code,
              std::string message, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"engine", "predict",  "@tiny.toml", "--weights",   "@" + weights,
                                   "--data", "@" + data, "--out",      "@out/" + name};
  args.insert(args.end(), kPredict.begin(), kPredict.end());
  args.insert(args.end(), extra.begin(), extra.end());
  return {std::move(name), args, code, std::move(message)};
}

Entry eval(std::string name, std::string data, int code, std::string message,
           std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {
      "engine", "eval",         "@tiny.toml",  "--weights", "@w.safetensors", "--data", "@" + data,
      "--out",  "@out/" + name, "--bootstrap", "10",        "--threads",      "1"};
  args.insert(args.end(), extra.begin(), extra.end());
  return {std::move(name), args, code, std::move(message)};
}

Entry import_onnx(std::string name, std::string model, int code, std::string message) {
  return {std::move(name),
          {"engine", "import-onnx", "@" + model, "-o", "@out/" + name + ".toml", "--weights-out",
           "@out/" + name + ".safetensors"},
          code,
          std::move(message)};
}

Entry import_tflite(std::string name, std::string model, int code, std::string message) {
  return {std::move(name),
          {"engine", "import-tflite", "@" + model, "@tiny.toml", "-o", "@out/" + name + ".st"},
          code,
          std::move(message)};
}

Entry mobile(std::string name, std::string model, int code, std::string message) {
  return {std::move(name), {"mobile_bench", "@" + model, "--iters", "1"}, code, std::move(message)};
}

const std::string kStrict = "data.strict=true";

std::vector<Entry> entries() {
  return {
      // graph files
      check("graph_empty", "empty.toml", 1, "no [graph] section"),
      check("graph_garbage", "garbage.toml", 1, "not valid TOML"),
      check("graph_directory", "adir.toml", 1, "adir.toml' is a directory"),
      check("graph_missing", "nothere.toml", 1, "nothere.toml' not found"),
      check("graph_under_a_file", "tiny.toml/x.toml", 1, "x.toml' not found"),
      check("graph_fifo", "fifo.toml", 1, "fifo.toml' is not a regular file"),
      check("graph_symlink_loop", "loop_a.toml", 1, "Too many levels of symbolic links"),
      check("graph_utf8_bom", "bom.toml", 0, "params"),
      check("graph_crlf", "crlf.toml", 0, "params"),
      check("block_uses_itself", "self_block.toml", 1, "block 'loop' uses itself: loop -> loop"),
      check("blocks_use_each_other", "mutual_blocks.toml", 1, "block 'a' uses itself: a -> b -> a"),
      check("blocks_2e40_nodes", "doubling.toml", 1,
            "expands to 1099511627777 nodes, more than limits.max_graph_nodes"),
      check("chain_200000_nodes", "chain.toml", 0, "200000"),
      check("toml_deep_arrays", "deep_arrays.toml", 1, "TOML nesting deeper than 128"),
      check("toml_deep_tables", "deep_tables.toml", 1, "TOML nesting deeper than 128"),
      check("conv_output_2e40", "conv_2e40.toml", 1,
            "node 'c' output [1,1048576,1024,1024] has 1099511627776 elements, more than "
            "limits.max_tensor_elements"),
      {"plan_arena_limit",
       {"engine", "plan", "@tiny.toml", "--set", "limits.max_arena_bytes=1000"},
       1,
       "more than limits.max_arena_bytes = 1000"},
      check("toml_unterminated_string", "unterminated.toml", 1, "unterminated.toml:6"),
      check("unknown_op", "unknown_op.toml", 1, "softmax"),
      check("dangling_input", "dangling_input.toml", 1, "nope"),
      check("include_missing", "include_missing.toml", 1, "missing_lib.toml' not found"),
      {"setting_not_a_number",
       {"engine", "check", "@tiny.toml", "--set", "limits.max_graph_nodes=abc"},
       1,
       "setting 'limits.max_graph_nodes' must be integer, got 'abc'"},
      {"command_line_unknown_option",
       {"engine", "check", "@tiny.toml", "--frobnicate"},
       2,
       "unknown option '--frobnicate'"},
      // weights (safetensors)
      predict("weights_empty", "w_empty.safetensors", "img", 1, "file is 0 bytes"),
      predict("weights_garbage", "w_garbage.safetensors", "img", 1, "exceeds the 5000-byte file"),
      predict("weights_header_longer_than_file", "w_header_too_long.safetensors", "img", 1,
              "header length 1000000 exceeds the 100-byte file"),
      predict("weights_truncated", "w_truncated.safetensors", "img", 1, "out of range of the"),
      predict("weights_offsets_past_end", "w_offsets.safetensors", "img", 1,
              "data_offsets [0,1000000000] out of range"),
      predict("weights_dtype_f64", "w_f64.safetensors", "img", 1,
              "tensor 'c1.weight' has dtype F64; only F32 is supported"),
      predict("weights_dtype_i32", "w_i32.safetensors", "img", 1,
              "tensor 'c1.weight' has dtype I32"),
      predict("weights_wrong_shape", "w_shape.safetensors", "img", 1,
              "tensor 'c1.weight' has shape [8,9,1,1], the graph needs [8,1,3,3]"),
      predict("weights_missing_tensor", "w_missing.safetensors", "img", 1,
              "missing tensor 'bn1.gamma'"),
      predict("weights_nan", "w_nan.safetensors", "img", 1,
              "tensor 'c1.weight' element 0 is NaN; weights must be finite"),
      predict("weights_inf", "w_inf.safetensors", "img", 1,
              "tensor 'c2.weight' element 0 is infinite"),
      predict("weights_directory", "adir.toml", "img", 1, "adir.toml: cannot read: Is a directory"),
      predict("weights_fifo", "w_fifo.safetensors", "img", 1, "not a regular file"),
      // images through predict
      predict("png_bombs_in_a_folder", "w.safetensors", "bombs", 0,
              "predicted 2 images (5 skipped"),
      predict("png_strip_200000x1", "w.safetensors", "strip_200000x1.png", 1,
              "200000x1 PNG pads to a 200000x200000 square", {"--set", kStrict}),
      predict("png_strip_1x150000", "w.safetensors", "strip_1x150000.png", 1,
              "over the limit data.max_padded_pixels", {"--set", kStrict}),
      predict("png_rgba16_30000x30000", "w.safetensors", "rgba16_30000.png", 1,
              "30000x30000 PNG has 900000000 pixels, over the limit data.max_image_pixels",
              {"--set", kStrict}),
      predict("png_truncated", "w.safetensors", "truncated.png", 1, "truncated.png",
              {"--set", kStrict}),
      predict("image_fifo", "w.safetensors", "fifo.png", 1, "not a regular file",
              {"--set", kStrict}),
      predict("predict_no_images", "w.safetensors", "empty_folder", 1, "no image files"),
      {"predict_out_is_a_file",
       {"engine", "predict", "@tiny.toml", "--weights", "@w.safetensors", "--data", "@img", "--out",
        "@tiny.toml"},
       1,
       "Not a directory"},
      // datasets: masks and CSV manifests
      eval("mask_values_not_0_255", "grey_mask.csv", 0, "2 images (1 malignant), 0 skipped",
           {"--set", kStrict}),
      eval("csv_bad_label", "bad_label.csv", 1, "bad_label.csv:2: unknown label \"7\"",
           {"--set", kStrict}),
      eval("csv_bad_label_skipped", "bad_label.csv", 0, "1 skipped"),
      eval("csv_too_few_fields", "few_fields.csv", 1,
           "few_fields.csv:2: expected 3 fields, found 2", {"--set", kStrict}),
      eval("csv_unknown_column", "bad_header.csv", 1, "unknown column \"img\""),
      eval("csv_missing_image", "missing_image.csv", 1, "data/nope.png: file does not exist",
           {"--set", kStrict}),
      eval("csv_unterminated_quote", "unterminated_quote.csv", 1, "unterminated quoted field"),
      eval("csv_empty", "empty.csv", 1, "empty.csv:1: empty file"),
      eval("csv_header_only", "header_only.csv", 1, "no usable images"),
      eval("csv_utf8_bom_crlf", "bom_crlf.csv", 0, "2 images (1 malignant), 0 skipped"),
      eval("csv_fifo", "fifo.csv", 1, "not a regular file"),
      eval("dataset_not_busi", "adir.toml", 1, "not a BUSI folder"),
      // models: ONNX, TFLite, .emtm
      import_onnx("onnx_empty", "empty.bin", 1, "empty.bin: the file is empty"),
      import_onnx("onnx_garbage", "garbage.bin", 1,
                  "not an ONNX model: the protobuf does not parse"),
      import_onnx("onnx_truncated", "truncated.onnx", 1, "truncated or corrupt file?"),
      import_onnx("onnx_directory", "adir.toml", 1, "Is a directory"),
      import_onnx("onnx_fifo", "fifo.bin", 1, "not a regular file"),
      {"onnx_backbone_truncated",
       {"engine", "import-onnx-backbone", "@truncated.onnx", "@tiny.toml", "-o", "@out/bb.st"},
       1,
       "not an ONNX model"},
      import_tflite("tflite_empty", "empty.bin", 1, "too short for a TFLite model (0 bytes)"),
      import_tflite("tflite_garbage", "garbage.bin", 1, "expected 'TFL3'"),
      import_tflite("tflite_truncated", "truncated.tflite", 1, "runs past the end of the file"),
      import_tflite("tflite_directory", "adir.toml", 1, "adir.toml: not a regular file"),
      import_tflite("tflite_fifo", "fifo.bin", 1, "fifo.bin: not a regular file"),
      mobile("emtm_empty", "empty.bin", 1, "no EMTMOBL\\x02 magic"),
      mobile("emtm_truncated", "truncated.emtm", 1, "truncated in"),
      mobile("emtm_directory", "adir.toml", 1, "adir.toml: not a regular file"),
  };
}

class BadInputs : public ::testing::TestWithParam<Entry> {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("emt_bad_inputs_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "out");
    emt::test::write_bad_inputs(dir_, EMT_ENGINE_BINARY, EMT_GRAPH2MOBILE_BINARY);
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  static inline fs::path dir_;
};

TEST_P(BadInputs, EndsWithItsMessageAndExitCode) {
  const Entry& e = GetParam();
  std::vector<std::string> argv;
  for (const std::string& arg : e.args)
    argv.push_back(arg == "engine"         ? std::string(EMT_ENGINE_BINARY)
                   : arg == "mobile_bench" ? std::string(EMT_MOBILE_BENCH_BINARY)
                   : arg.front() == '@'    ? (dir_ / arg.substr(1)).string()
                                           : arg);
  const emt::test::BoundedRun run =
      emt::test::run_bounded(argv, {"OMP_WAIT_POLICY=passive"}, dir_ / (e.name + ".log"));
  ASSERT_FALSE(run.timed_out) << e.name << ": killed after the time bound\n" << run.output;
  ASSERT_FALSE(WIFSIGNALED(run.status))
      << e.name << ": ended by signal " << WTERMSIG(run.status) << "\n"
      << run.output;
  ASSERT_TRUE(WIFEXITED(run.status));
  EXPECT_EQ(WEXITSTATUS(run.status), e.exit_code) << e.name << "\n" << run.output;
  EXPECT_NE(run.output.find(e.message), std::string::npos)
      << e.name << ": no '" << e.message << "' in\n"
      << run.output;
}

INSTANTIATE_TEST_SUITE_P(Catalogue, BadInputs, ::testing::ValuesIn(entries()),
                         [](const auto& info) { return info.param.name; });

// The README's table is the catalogue's documentation: one row per entry, naming it, its
// message and its exit code.
TEST(BadInputsReadme, ListsEveryEntry) {
  const char* source = std::getenv("EMT_SOURCE_DIR");
  const std::string readme =
      emt::test::read_text(fs::path(source ? source : ".") / "tests/bad_inputs/README.md");
  ASSERT_FALSE(readme.empty()) << "tests/bad_inputs/README.md not found";
  for (const Entry& e : entries()) {
    const size_t row = readme.find("\n| `" + e.name + "` |");
    ASSERT_NE(row, std::string::npos) << "no README row for " << e.name;
    const std::string line = readme.substr(row + 1, readme.find('\n', row + 1) - row - 1);
    EXPECT_NE(line.find(e.message), std::string::npos) << line;
    EXPECT_NE(line.find("| " + std::to_string(e.exit_code) + " |"), std::string::npos) << line;
  }
}

}  // namespace
