// `engine bench`: EMT-Net's inference latency and throughput and its training throughput on
// this machine, with ONNX Runtime and PyTorch run side by side as baselines.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "engine/compiler/program.h"
#include "engine/dsl/parser.h"

namespace emt {

struct BenchOptions {
  std::vector<int> threads = {1, 2};
  int iterations = 10;  // timed repetitions per figure (after 2 warm-up runs); medians reported
  Backend backend = Backend::kOnednn;
  bool baselines = true;             // run ONNX Runtime and PyTorch too
  bool profile = false;              // print the per-op time of the batch-16 training step
  std::filesystem::path source_dir;  // where tools/bench and ../shared live
  std::filesystem::path ort_model;   // the ONNX model ORT runs; empty: our own export of the graph
  std::filesystem::path ort_dir;  // holds node_modules/onnxruntime-node; empty: node's own search
  // kBf16 adds our bf16 inference figures next to the fp32 ones, and their agreement with fp32
  // on a phantom test set.
  Precision precision = Precision::kFp32;
  std::filesystem::path weights;  // safetensors to run instead of the random initialisation
};

// Figures for one thread count; keys as in `engine bench --json`: infer_b1_ms,
// infer_b16_img_s, train_b16_img_s, peak_rss_mb, gflops, peak_gflops, the baselines' figures
// prefixed ort_ / torch_ (absent when a baseline could not run) and, with bf16 precision,
// bf16_infer_b1_ms, bf16_infer_b16_img_s, bf16_max_prob_diff (max |p_bf16 - p_fp32| of the
// classifier) and bf16_mask_dice (mean Dice of the bf16 and fp32 masks at 0.5).
using BenchFigures = std::map<std::string, double>;

std::map<int, BenchFigures> run_bench(const GraphFile& file, const BenchOptions& options,
                                      std::ostream& out);

// The compiled layer list as JSON (steps with op, attributes, inputs and parameter shapes), from
// which tools/bench/torch_bench.py builds the same network in PyTorch.
std::string program_json(const Program& program);

}  // namespace emt
