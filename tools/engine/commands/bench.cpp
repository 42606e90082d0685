// `engine bench`: our inference and training figures beside ONNX Runtime's and PyTorch's.
#include "engine/bench/bench.h"

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "engine/io/atomic_file.h"
#include "tools/engine/commands/commands.h"
#include "tools/engine/options.h"

namespace emt::cli {
namespace {

struct BenchArgs {
  std::string graph, json, ort_model, weights;
  std::vector<std::string> sets;
  int iterations = 10;
  bool profile = false, no_baselines = false;
  Backend backend = Backend::kOnednn;
  Precision precision = Precision::kFp32;
};

// tools/setup.sh installs onnxruntime-node next to the build, in <build>/ort, unless the
// environment names another place.
std::filesystem::path onnxruntime_dir() {
  if (const char* dir = std::getenv("EMT_ORT_DIR")) return dir;
  const auto build_dir =
      std::filesystem::read_symlink("/proc/self/exe").parent_path().parent_path();
  return build_dir / "ort";
}

void write_json(const std::map<int, BenchFigures>& results, const std::string& path) {
  nlohmann::json j;
  for (const auto& [threads, figures] : results)
    for (const auto& [key, value] : figures) j["threads_" + std::to_string(threads)][key] = value;
  write_file_atomic(path, j.dump(2) + "\n");
}

CommandRun define(CLI::App& app) {
  auto args = std::make_shared<BenchArgs>();
  add_graph(app, args->graph);
  add_settings(app, args->sets);
  app.add_option("--json", args->json, "also write the figures as JSON")->type_name("FILE");
  app.add_flag("--profile", args->profile,
               "per-op time of a batch-1 inference and of a training step");
  app.add_option("--iters", args->iterations, "timed repetitions per figure (default 10)")
      ->type_name("N")
      ->check(positive_integer());
  app.add_flag("--no-baselines", args->no_baselines, "skip ONNX Runtime and PyTorch");
  app.add_option("--ort-model", args->ort_model,
                 "the ONNX model ORT runs (default: this engine's export of GRAPH, e.g. "
                 "../shared/reference/emtnet_ref.onnx for the independently built model)")
      ->type_name("F");
  app.add_option("--weights", args->weights,
                 "weights to time and compare instead of the random initialisation")
      ->type_name("W");
  add_backend(app, args->backend);
  add_precision(app, args->precision,
                std::string(kInferencePrecisionHelp) +
                    ". bf16 adds the bf16 figures, their ratio to fp32 and the bf16-vs-fp32 "
                    "agreement on 64 phantom images (classifier probabilities, masks' Dice)");
  return [args](const CommonArgs& common) {
    // The paper's input size unless the command line says otherwise.
    std::vector<std::string> sets = {"data.input_size=224"};
    sets.insert(sets.end(), args->sets.begin(), args->sets.end());
    const GraphFile file = parse_graph_file(args->graph, sets);
    BenchOptions options;
    if (common.threads > 0) options.threads = {common.threads};
    options.iterations = args->iterations;
    options.backend = args->backend;
    options.baselines = !args->no_baselines;
    options.profile = args->profile;
    options.source_dir = std::filesystem::current_path();
    options.ort_model = args->ort_model;
    options.ort_dir = onnxruntime_dir();
    options.precision = args->precision;
    options.weights = args->weights;
    const auto results = run_bench(file, options, std::cout);
    if (!args->json.empty()) write_json(results, args->json);
  };
}

}  // namespace

Command bench_command() {
  Command bench{
      "bench", "time inference and training beside ONNX Runtime and PyTorch",
      "time inference (batch 1 latency, batch 16 throughput) and training (batch 16) at 224x224 "
      "with 1 and 2 threads, with ONNX Runtime and PyTorch run side by side (run from the "
      "project root: ORT runs this engine's ONNX export via tools/bench/ort_bench.js; PyTorch "
      "needs Debian's python3-torch and libopenblas0-openmp; a missing baseline is reported and "
      "skipped)",
      define};
  bench.threads_help = "the one thread count to time (default: 1 and 2)";
  return bench;
}

}  // namespace emt::cli
