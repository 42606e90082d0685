// The `engine` command line as a user meets it: `engine --help` lists every command, each
// command's --help exits 0 and names each of its options, and a bad command line exits 2 with
// a message naming the option and the value at fault. The expected commands and options are
// written out here, independently of the command table, so that a lost option shows up.
#include <gtest/gtest.h>

#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "tests/cli/bounded_run.h"

namespace {

namespace fs = std::filesystem;

struct CommandOptions {
  std::string command;
  std::vector<std::string> options;  // each must appear in `engine COMMAND --help`
};

void PrintTo(const CommandOptions& c, std::ostream* out) { *out << c.command; }

const std::vector<std::string> kSettings = {"GRAPH", "--set", "--data", "--threads"};

std::vector<std::string> with_settings(std::vector<std::string> options) {
  options.insert(options.end(), kSettings.begin(), kSettings.end());
  return options;
}

std::vector<CommandOptions> commands() {
  return {
      {"check", with_settings({"--batch", "--backend", "--verbose", "--precision"})},
      {"plan", with_settings({"--batch", "--backend", "--verbose", "--precision"})},
      {"run", with_settings(
                  {"--out", "-o", "--resume", "--backend", "--verbose", "--precision", "--quiet"})},
      {"eval", with_settings({"--weights", "--out", "--threshold", "--target-sensitivity",
                              "--split", "--bootstrap", "--backend", "--precision", "--quiet"})},
      {"predict", with_settings({"--weights", "--out", "--threshold", "--batch", "--no-masks",
                                 "--resume", "--backend", "--precision", "--quiet"})},
      {"export-onnx", with_settings({"--weights", "-o", "--logits"})},
      {"import-onnx", {"MODEL", "-o", "--weights-out", "--threads"}},
      {"import-onnx-backbone", with_settings({"MODEL", "-o"})},
      {"import-tflite", with_settings({"MODEL", "-o"})},
      {"experiment", with_settings({"KIND", "--out", "--values", "--wp", "--wc", "--folds",
                                    "--seeds", "--target-sensitivity", "--backend"})},
      {"bench", with_settings({"--json", "--profile", "--iters", "--no-baselines", "--ort-model",
                               "--weights", "--backend", "--precision"})},
  };
}

class CommandLine : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("emt_command_line_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  static emt::test::BoundedRun engine(std::vector<std::string> args) {
    args.insert(args.begin(), EMT_ENGINE_BINARY);
    return emt::test::run_bounded(args, {"OMP_WAIT_POLICY=passive"}, dir_ / "engine.log");
  }

  static int exit_code(const emt::test::BoundedRun& run) {
    return WIFEXITED(run.status) ? WEXITSTATUS(run.status) : -1;
  }

  static inline fs::path dir_;
};

TEST_F(CommandLine, HelpListsEveryCommand) {
  const emt::test::BoundedRun run = engine({"--help"});
  EXPECT_EQ(exit_code(run), 0) << run.output;
  for (const CommandOptions& c : commands())
    EXPECT_NE(run.output.find("\n  " + c.command + " "), std::string::npos)
        << c.command << " not listed in\n"
        << run.output;
  EXPECT_NE(run.output.find("exit status"), std::string::npos) << run.output;
}

class CommandHelp : public CommandLine, public ::testing::WithParamInterface<CommandOptions> {};

TEST_P(CommandHelp, NamesEachOption) {
  const CommandOptions& c = GetParam();
  const emt::test::BoundedRun run = engine({c.command, "--help"});
  EXPECT_EQ(exit_code(run), 0) << run.output;
  EXPECT_NE(run.output.find("engine " + c.command), std::string::npos) << run.output;
  for (const std::string& option : c.options) {
    // An option's name stands alone: "--out" must not be matched by "--weights-out".
    const bool named = run.output.find("  " + option + " ") != std::string::npos ||
                       run.output.find("  " + option + ",") != std::string::npos ||
                       run.output.find("," + option + " ") != std::string::npos;
    EXPECT_TRUE(named) << c.command << ": no " << option << " in\n" << run.output;
  }
}

INSTANTIATE_TEST_SUITE_P(EveryCommand, CommandHelp, ::testing::ValuesIn(commands()),
                         [](const auto& info) {
                           std::string name = info.param.command;
                           for (char& ch : name)
                             if (ch == '-') ch = '_';
                           return name;
                         });

struct BadLine {
  std::vector<std::string> args;
  std::vector<std::string> message;  // fragments the output must hold
};

// Refused while parsing, before any file is opened: none of these files exist.
TEST_F(CommandLine, BadCommandLinesExitTwoNamingWhatIsWrong) {
  const std::vector<std::string> predict = {"predict", "g.toml", "--weights", "w",
                                            "--out",   "o",      "--data",    "img"};
  auto predict_with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = predict;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  const std::vector<BadLine> lines = {
      {{}, {"missing command", "predict"}},
      {{"frobnicate", "g.toml"}, {"unknown command 'frobnicate'"}},
      {{"check", "g.toml", "--frobnicate"}, {"unknown option '--frobnicate'"}},
      {predict_with({"--frobnicate", "3"}), {"unknown option '--frobnicate'"}},
      {{"--set", "a=1", "check", "g.toml"}, {"unknown option '--set'"}},
      {{"check", "g.toml", "extra.toml"}, {"unexpected argument 'extra.toml'"}},
      {{"check"}, {"GRAPH is required"}},
      {{"eval", "g.toml", "--out", "o"}, {"--weights is required"}},
      {{"predict", "g.toml", "--weights", "w", "--out", "o"}, {"--data"}},
      {predict_with({"--threshold", "1.5"}), {"--threshold", "'1.5'"}},
      {predict_with({"--threshold", "x"}), {"--threshold", "'x'"}},
      {predict_with({"--batch", "0"}), {"--batch", "'0'"}},
      {predict_with({"--batch", "2x"}), {"--batch", "'2x'"}},
      {predict_with({"--backend", "cuda"}), {"--backend", "'cuda'"}},
      {predict_with({"--precision", "fp16"}), {"--precision", "'fp16'"}},
      {predict_with({"--threads", "-1"}), {"--threads", "'-1'"}},
      {{"eval", "g.toml", "--weights", "w", "--out", "o", "--target-sensitivity", "0"},
       {"--target-sensitivity", "'0'"}},
      {{"eval", "g.toml", "--weights", "w", "--out", "o", "--split", "holdout"},
       {"--split", "'holdout'"}},
      {{"eval", "g.toml", "--weights", "w", "--out", "o", "--target-sensitivity", "0.9", "--split",
        "val"},
       {"--target-sensitivity", "--split val"}},
      {{"check", "g.toml", "--verbose=everything"}, {"--verbose", "'everything'"}},
      {{"check", "g.toml", "--precision", "bf16"}, {"--precision", "--verbose"}},
      {{"run", "g.toml", "--precision", "bf16"}, {"--precision", "engine eval"}},
      {{"run", "g.toml", "--resume"}, {"--resume", "--out"}},
      {{"experiment", "sweep", "--out", "o"}, {"KIND", "'sweep'"}},
      {{"experiment", "grid", "--out", "o", "--wp", "1,-2"}, {"--values", "'1,-2'"}},
      {{"experiment", "cv", "--out", "o", "--folds", "0"}, {"--folds", "'0'"}},
      {{"check", "g.toml", "--set"}, {"--set"}},
  };
  for (const BadLine& line : lines) {
    std::string shown = "engine";
    for (const std::string& a : line.args) shown += " " + a;
    const emt::test::BoundedRun run = engine(line.args);
    EXPECT_EQ(exit_code(run), 2) << shown << "\n" << run.output;
    for (const std::string& fragment : line.message)
      EXPECT_NE(run.output.find(fragment), std::string::npos)
          << shown << ": no '" << fragment << "' in\n"
          << run.output;
    EXPECT_NE(run.output.find("--help"), std::string::npos) << shown << "\n" << run.output;
  }
}

}  // namespace
