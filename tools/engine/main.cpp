// `engine`: the command-line front end. Parses arguments and dispatches; the work lives in engine/.
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "engine/bench/bench.h"
#include "engine/compiler/plan_report.h"
#include "engine/dsl/parser.h"
#include "engine/eval/eval_command.h"
#include "engine/experiments/cv.h"
#include "engine/experiments/experiments.h"
#include "engine/import/onnx_backbone.h"
#include "engine/import/tflite.h"
#include "engine/io/atomic_file.h"
#include "engine/onnx/export.h"
#include "engine/onnx/import.h"
#include "engine/predict/predict_command.h"
#include "engine/runtime/threading.h"
#include "engine/train/run.h"

namespace {

constexpr const char* kUsage = R"(usage: engine <command> GRAPH.toml [options]

commands:
  check GRAPH   validate the graph file (includes, blocks, names, shapes) and print a summary
  plan GRAPH    print every op with its output shape, parameters and FLOPs, the totals, and
                the activation memory the plan needs
  run GRAPH     train on [data] (default: the generated phantom set), validate every epoch,
                then score the best epoch on the held-out test split; writes a run directory
                (config.toml, log.txt, history.csv, metrics.json, per_image.csv,
                weights.safetensors, checkpoint.safetensors)
  export-onnx GRAPH --weights W -o model.onnx
                write an ONNX model (opset 13, dynamic batch, inference semantics) that passes
                the ONNX checker; inputs and outputs named as in the graph
  import-onnx-backbone MODEL.onnx GRAPH -o W.safetensors
                initialise GRAPH's parameters from an ONNX model's convolutions (Conv, batch
                norm copied or, when folded into the bias, made identity + bias), in order onto
                the graph's conv2d/dense nodes, stopping at the first that does not fit
  import-tflite MODEL.tflite GRAPH -o W.safetensors
                initialise GRAPH's parameters from a TensorFlow Lite model (e.g. the MobileNetV1
                files in ../shared/models): its convolutions, dequantised, batch norm folded in,
                onto the graph's conv2d/dense nodes in order (stem, ds1.dw, ds1.pw, ...); every
                other tensor keeps its initialisation (train.seed). Prints what went where and
                where the graph computes differently (graphs/emtnet_pretrained.toml matches the
                MobileNetV1 files: ReLU6, TF SAME padding). Train from it with
                --set train.init_weights=W
  import-onnx MODEL.onnx -o GRAPH.toml --weights-out W.safetensors
                convert an ONNX model made of the engine's ops (Conv, ConvTranspose,
                BatchNormalization, Relu, Clip(0,6), Add, GlobalAveragePool, Gemm/MatMul,
                Sigmoid, Dropout) into a graph file (one node per line, inputs and outputs
                named as in the model) and its weights; an unsupported op or attribute is one
                error naming the node, and then nothing is written
  eval GRAPH --weights W --out DIR [--data D] [--threshold T] [--target-sensitivity S]
                score trained weights on a dataset (every image unless --split says which part
                of the seeded split); writes metrics.json (acc, sen, spe, auc, dsc, iou with
                95% bootstrap intervals), per_image.csv, roc.png and overlays/ (best and worst 4
                by Dice). Input size, normalisation and threshold come from the weights
  predict GRAPH --weights W --data SOURCE --out DIR [--threshold T] [--batch N] [--no-masks]
                [--resume]
                batch inference on unlabelled images: SOURCE is a folder (every .png, .jpg,
                .jpeg, .bmp below it except <name>_mask*.ext files), a CSV with an image column,
                or one image. Decoding overlaps the network (TBB pipeline, --batch images per
                pass, default 16); writes predictions.csv (image, prob, malignant,
                lesion_fraction, mask), masks/<image>.png at each image's own size, skipped.csv
                for unreadable files (--set data.strict=true stops at the first instead) and
                summary.json. Input size, normalisation and threshold come from the weights;
                eval.largest_region and eval.flip_tta apply. Kill-safe: every finished batch
                is appended to DIR/predictions.journal (fsync'd, each record checksummed) and
                the tables are assembled from it at the end. DIR must be empty or missing;
                --resume continues the job whose journal DIR holds, predicting only the
                images not in it (an image is the same when its absolute path, size and
                modification time are)
  experiment KIND [GRAPH] --out DIR
                the paper's experiments, one training after another into a job directory
                (re-running the command resumes it): wp-sweep (Single-CLF over W_p with 4-fold
                cross-validation; --values, --folds; wp_sweep.csv/.png), ablation (EMT-Net vs
                Single-CLF vs Single-SGM on one split; ablation.md; for GRAPH emtnet<S>.toml the
                baselines are single_clf<S>.toml and single_sgm<S>.toml beside it, e.g.
                single_clf_pretrained.toml), grid (W_p x W_c, --wp, --wc; grid.csv, grid.png
                heat maps of SEN and SPE) and cv (--folds K x --seeds S trainings, train.seed
                counting up from the graph's; each run chooses its epoch and, for sensitivity
                --target-sensitivity (default 0.9), its threshold on its fold's val part and
                scores its test part once; cv_runs.csv, cv_summary.csv/.json with mean, sd and
                95% t interval of ACC/SEN/SPE/AUC/DSC/IoU, cv_report.md, pooled_roc.csv: each
                seed's out-of-fold test ROC)
  bench GRAPH   time inference (batch 1 latency, batch 16 throughput) and training (batch 16)
                at 224x224 with 1 and 2 threads, with ONNX Runtime and PyTorch run side by side
                (run from the project root: ORT runs this engine's ONNX export via
                tools/bench/ort_bench.js; PyTorch needs Debian's python3-torch and
                libopenblas0-openmp; a missing baseline is reported and skipped)

options:
  --set KEY=VALUE  override a setting of the graph file, e.g. --set train.epochs=3
                   (repeatable; keys: data.*, train.*, augment.*, eval.*, output.*,
                   objective.*)
  --data PATH      the dataset: a BUSI-layout folder or a CSV manifest (image,label,mask[,group]);
                   same as --set data.source=PATH (default: the generated phantom). Images are
                   checked from their headers and skipped undecoded above data.max_image_pixels
                   (w x h), data.max_padded_pixels (max(w, h)^2; both 67108864) or
                   data.max_bytes_per_pixel (8)
  --out DIR        run directory (default: output.dir, or runs/<graph>-<timestamp>)
  --resume         run: continue the run in --out DIR from its last checkpoint; predict:
                   continue the job in --out DIR, skipping the images in its journal
  --batch N        batch size used by check/plan (default 1) and predict (default 16)
  --no-masks       predict: write no mask files (predictions.csv still has lesion_fraction)
  --backend NAME   kernels: "reference" (plain loops, the ground truth) or "onednn" (oneDNN
                   variants where an op has one, the reference elsewhere). Default: onednn
  --verbose=dispatch  print, for each op, which implementation runs and why others did not
                   (with --precision bf16: of the fused bf16 inference plan, dtype per value)
  --precision P    fp32 (default) or bf16: bench and eval run inference with the activations
                   between oneDNN convolutions in bf16 (AVX512-BF16 / AMX; refused with the
                   reason on a CPU without them). Inference only: training, and so engine run,
                   stays fp32 (evaluate a run's weights with eval --precision bf16). bench adds
                   the bf16 figures, their ratio to fp32 and the bf16-vs-fp32 agreement on 64
                   phantom images (classifier probabilities, masks' Dice)
  --threads N      worker threads (default: all cores; bench: the thread counts 1 and 2)
  --json FILE      bench: also write the figures as JSON
  --profile        bench: per-op time of a batch-1 inference and of a training step
  --iters N        bench: timed repetitions per figure (default 10)
  --no-baselines   bench: skip ONNX Runtime and PyTorch
  --ort-model F    bench: the ONNX model ORT runs (default: this engine's export of GRAPH, e.g.
                   ../shared/reference/emtnet_ref.onnx for the independently built model)
  --weights W      export-onnx: the trained weights (a run's weights.safetensors); bench:
                   weights to time and compare instead of the random initialisation
  --threshold T    eval: malignant iff probability >= T (default: the weights' threshold)
  --target-sensitivity S
                   eval: choose the threshold reaching sensitivity S on the val split and
                   report the test split at it (and at the default threshold); experiment
                   cv: every run's target (eval.target_sensitivity, default 0.9)
  --split NAME     eval: all (default), train, val or test
  --bootstrap N    eval: bootstrap resamples for the 95% intervals (default 2000)
  -o FILE          export-onnx: the ONNX file to write; import-onnx: the graph file to write;
                   import-tflite: the safetensors file (all written atomically)
  --weights-out W  import-onnx: the weights file to write (safetensors, written atomically)
  --logits         export-onnx: also output cls_logit / seg_logit (before the sigmoid)
  --quiet          no progress output (run, eval, predict)
  -h, --help       this text

exit status: 0 success, 1 error in the graph, data or run, 2 bad command line
)";

struct Args {
  std::string command, graph, out, json, ort_model, weights, weights_out, experiment, tflite;
  std::vector<double> values, wc_values;
  int folds = 4, seeds = 1;
  bool logits = false;
  std::optional<double> threshold, target_sensitivity;
  std::string split = "all";
  int bootstrap = 2000;
  std::vector<std::string> sets;
  emt::Backend backend = emt::Backend::kOnednn;
  emt::Precision precision = emt::Precision::kFp32;
  bool resume = false, quiet = false, verbose_dispatch = false, profile = false, baselines = true;
  int iterations = 10;
  std::optional<int64_t> batch;  // check/plan: 1, predict: 16
  bool masks = true;
  int threads = 0;
};

[[noreturn]] void usage_error(const std::string& message) {
  std::cerr << "engine: " << message << "\n(run 'engine --help' for usage)\n";
  std::exit(2);
}

int64_t parse_int(const std::string& flag, const char* text) {
  char* end = nullptr;
  const long long v = std::strtoll(text, &end, 10);
  if (!*text || *end || v <= 0)
    usage_error(flag + " expects a positive integer, got '" + text + "'");
  return v;
}

// A number in [lo, hi]; lo itself is excluded when open_lo.
double parse_fraction(const std::string& flag, const char* text, double lo, double hi,
                      bool open_lo) {
  char* end = nullptr;
  const double v = std::strtod(text, &end);
  if (!*text || *end || !(v <= hi) || v < lo || (open_lo && v == lo))
    usage_error(flag + " expects a number in " + (open_lo ? "(" : "[") + std::to_string(lo) + ", " +
                std::to_string(hi) + "], got '" + text + "'");
  return v;
}

std::vector<double> parse_list(const std::string& flag, const char* text) {
  std::vector<double> values;
  std::string item;
  std::istringstream in(text);
  while (std::getline(in, item, ',')) {
    char* end = nullptr;
    const double v = std::strtod(item.c_str(), &end);
    if (item.empty() || *end || !(v > 0))
      usage_error(flag + " expects positive numbers separated by commas, got '" + text + "'");
    values.push_back(v);
  }
  return values;
}

Args parse_args(int argc, char** argv) {
  Args a;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage_error(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      std::exit(0);
    } else if (arg == "--set") {
      a.sets.push_back(value());
    } else if (arg == "--data") {
      a.sets.push_back(std::string("data.source=") + value());
    } else if (arg == "--out") {
      a.out = value();
    } else if (arg == "--resume") {
      a.resume = true;
    } else if (arg == "--quiet") {
      a.quiet = true;
    } else if (arg == "--backend") {
      const std::string name = value();
      try {
        a.backend = emt::parse_backend(name);
      } catch (const std::invalid_argument& e) {
        usage_error(e.what());
      }
    } else if (arg == "--precision") {
      const std::string name = value();
      try {
        a.precision = emt::parse_precision(name);
      } catch (const std::invalid_argument& e) {
        usage_error(e.what());
      }
    } else if (arg == "--json") {
      a.json = value();
    } else if (arg == "--profile") {
      a.profile = true;
    } else if (arg == "--iters") {
      a.iterations = static_cast<int>(parse_int(arg, value()));
    } else if (arg == "--values" || arg == "--wp") {
      a.values = parse_list(arg, value());
    } else if (arg == "--wc") {
      a.wc_values = parse_list(arg, value());
    } else if (arg == "--folds") {
      a.folds = static_cast<int>(parse_int(arg, value()));
    } else if (arg == "--seeds") {
      a.seeds = static_cast<int>(parse_int(arg, value()));
    } else if (arg == "--weights") {
      a.weights = value();
    } else if (arg == "--weights-out") {
      a.weights_out = value();
    } else if (arg == "--threshold") {
      a.threshold = parse_fraction(arg, value(), 0.0, 1.0, false);
    } else if (arg == "--target-sensitivity") {
      a.target_sensitivity = parse_fraction(arg, value(), 0.0, 1.0, true);
    } else if (arg == "--split") {
      a.split = value();
      if (a.split != "all" && a.split != "train" && a.split != "val" && a.split != "test")
        usage_error("--split expects all, train, val or test, got '" + a.split + "'");
    } else if (arg == "--bootstrap") {
      a.bootstrap = static_cast<int>(parse_int(arg, value()));
    } else if (arg == "-o") {
      a.out = value();
    } else if (arg == "--logits") {
      a.logits = true;
    } else if (arg == "--no-masks") {
      a.masks = false;
    } else if (arg == "--no-baselines") {
      a.baselines = false;
    } else if (arg == "--ort-model") {
      a.ort_model = value();
    } else if (arg == "--verbose=dispatch") {
      a.verbose_dispatch = true;
    } else if (arg == "--batch") {
      a.batch = parse_int(arg, value());
    } else if (arg == "--threads") {
      a.threads = static_cast<int>(parse_int(arg, value()));
    } else if (arg.rfind("--", 0) == 0) {
      usage_error("unknown option '" + arg + "'");
    } else {
      positional.push_back(arg);
    }
  }
  const std::string command_list =
      "check, plan, run, eval, predict, bench, export-onnx, import-onnx, "
      "import-onnx-backbone, import-tflite or experiment";
  if (positional.empty()) usage_error("missing command (" + command_list + ")");
  a.command = positional[0];
  const std::vector<std::string> commands = {"check",
                                             "plan",
                                             "run",
                                             "eval",
                                             "predict",
                                             "bench",
                                             "export-onnx",
                                             "import-onnx",
                                             "import-tflite",
                                             "experiment",
                                             "import-onnx-backbone"};
  if (std::find(commands.begin(), commands.end(), a.command) == commands.end())
    usage_error("unknown command '" + a.command + "' (" + command_list + ")");
  if (a.command == "experiment") {
    // engine experiment KIND [GRAPH]: the graph defaults to the one the paper's experiment uses.
    if (positional.size() < 2 || positional.size() > 3)
      usage_error(
          "experiment takes a kind (wp-sweep, ablation, grid or cv) and optionally a graph");
    a.experiment = positional[1];
    const std::map<std::string, std::string> default_graph = {
        {"wp-sweep", "graphs/single_clf.toml"},
        {"ablation", "graphs/emtnet.toml"},
        {"grid", "graphs/emtnet.toml"},
        {"cv", "graphs/emtnet.toml"}};
    if (!default_graph.count(a.experiment))
      usage_error("unknown experiment '" + a.experiment + "' (wp-sweep, ablation, grid or cv)");
    a.graph = positional.size() == 3 ? positional[2] : default_graph.at(a.experiment);
    if (a.out.empty()) usage_error("experiment needs --out DIR (re-running it resumes the job)");
    return a;
  }
  if (a.command == "import-tflite" || a.command == "import-onnx-backbone") {
    if (positional.size() != 3 || a.out.empty())
      usage_error(a.command + " takes " +
                  (a.command == "import-tflite" ? "MODEL.tflite" : "MODEL.onnx") +
                  " GRAPH.toml -o W.safetensors");
    a.tflite = positional[1];  // the source model, TFLite or ONNX
    a.graph = positional[2];
    return a;
  }
  if (a.command == "export-onnx" && (a.weights.empty() || a.out.empty()))
    usage_error("export-onnx needs --weights W and -o FILE");
  if (a.command == "import-onnx" && (a.out.empty() || a.weights_out.empty()))
    usage_error("import-onnx needs -o GRAPH.toml and --weights-out W.safetensors");
  if (a.command == "eval" && (a.weights.empty() || a.out.empty()))
    usage_error("eval needs --weights W and --out DIR");
  if (a.command == "predict" && (a.weights.empty() || a.out.empty() ||
                                 std::none_of(a.sets.begin(), a.sets.end(), [](const auto& s) {
                                   return s.rfind("data.source=", 0) == 0;
                                 })))
    usage_error("predict needs --weights W, --data SOURCE and --out DIR");
  if (a.target_sensitivity && a.split != "all" && a.split != "test")
    usage_error(
        "--target-sensitivity chooses the threshold on val and reports test; it cannot "
        "be combined with --split " +
        a.split);
  if (positional.size() != 2)
    usage_error(a.command + (a.command == "import-onnx" ? " takes exactly one ONNX model"
                                                        : " takes exactly one graph file"));
  a.graph = positional[1];
  if (a.resume && a.out.empty()) usage_error("--resume needs --out DIR naming the run to continue");
  if (a.precision == emt::Precision::kBf16 && a.command == "run")
    usage_error(
        "--precision bf16 is for inference only and engine run trains in fp32; evaluate the "
        "run's weights with: engine eval GRAPH --weights RUN/weights.safetensors --precision bf16");
  if (a.precision == emt::Precision::kBf16 && a.command != "bench" && a.command != "eval" &&
      a.command != "predict" && !a.verbose_dispatch)
    usage_error("--precision applies to bench, eval, predict and --verbose=dispatch only");
  return a;
}

}  // namespace

int run_eval_command(const Args& args) {
  // run_eval refuses a --set data.input_size that contradicts the weights.
  const emt::GraphFile file = emt::parse_graph_for_weights(args.graph, args.weights, args.sets);
  emt::EvalCommandOptions options;
  options.weights = args.weights;
  options.out_dir = args.out;
  options.threshold = args.threshold;
  options.target_sensitivity = args.target_sensitivity;
  options.split = args.split;
  options.backend = args.backend;
  options.precision = args.precision;
  options.bootstrap_resamples = args.bootstrap;
  options.console = args.quiet ? nullptr : &std::cerr;
  emt::run_eval(file, options);
  return 0;
}

int run_predict_command(const Args& args) {
  const emt::GraphFile file = emt::parse_graph_for_weights(args.graph, args.weights, args.sets);
  emt::PredictCommandOptions options;
  options.weights = args.weights;
  options.source = file.config.get_string("data.source");
  options.out_dir = args.out;
  options.threshold = args.threshold;
  options.batch = args.batch.value_or(16);
  options.write_masks = args.masks;
  options.resume = args.resume;
  options.console_is_terminal = isatty(STDERR_FILENO) == 1;
  options.backend = args.backend;
  options.precision = args.precision;
  options.console = args.quiet ? nullptr : &std::cerr;
  emt::run_predict(file, options);
  return 0;
}

int run_experiment_command(const Args& args) {
  std::vector<std::string> overrides;
  for (const std::string& set : args.sets) {
    // The job records its settings to recognise itself on resume: a dataset path must not
    // depend on the working directory.
    const std::string key = "data.source=";
    if (set.rfind(key, 0) == 0 && set.substr(key.size()) != "phantom")
      overrides.push_back(key + std::filesystem::absolute(set.substr(key.size())).string());
    else
      overrides.push_back(set);
  }
  const emt::JobOptions job{args.backend, &std::cout, false};
  const std::filesystem::path graph = args.graph, out = args.out;
  if (args.experiment == "wp-sweep") {
    emt::WpSweepSpec spec{graph, overrides, out};
    if (!args.values.empty()) spec.values = args.values;
    spec.folds = args.folds;
    emt::wp_sweep(spec, job);
  } else if (args.experiment == "ablation") {
    // emtnet<S>.toml trains beside single_clf<S>.toml and single_sgm<S>.toml: the baselines
    // share its backbone's semantics (emtnet_pretrained.toml: ReLU6, TF SAME padding).
    const std::string stem = graph.stem().string();
    const std::string suffix = stem.rfind("emtnet", 0) == 0 ? stem.substr(6) : "";
    const std::filesystem::path dir = graph.parent_path();
    emt::ablation({graph, dir / ("single_clf" + suffix + ".toml"),
                   dir / ("single_sgm" + suffix + ".toml"), overrides, out},
                  job);
  } else if (args.experiment == "cv") {
    emt::CvSpec spec{graph, overrides, out};
    spec.folds = args.folds;
    spec.seeds = args.seeds;
    if (args.target_sensitivity) spec.target_sensitivity = *args.target_sensitivity;
    emt::cross_validation(spec, job);
  } else {
    emt::WeightGridSpec spec{graph, overrides, out};
    if (!args.values.empty()) spec.wp_values = args.values;
    if (!args.wc_values.empty()) spec.wc_values = args.wc_values;
    emt::weight_grid(spec, job);
  }
  return 0;
}

int run_import_tflite_command(const Args& args) {
  const emt::GraphFile file = emt::parse_graph_file(args.graph, args.sets);
  // What the file lacks gets the initialisation `engine run` would give it.
  const emt::Model model(file, static_cast<uint64_t>(file.config.get_int("train.seed")));
  const emt::ImportReport report = args.command == "import-onnx-backbone"
                                       ? emt::import_onnx_backbone(args.tflite, model, args.out)
                                       : emt::import_tflite_backbone(args.tflite, model, args.out);
  std::cout << report.summary();
  std::cerr << "wrote " << args.out << "\n";
  return 0;
}

int run_bench_command(const Args& args) {
  // The paper's input size unless the command line says otherwise.
  std::vector<std::string> sets = {"data.input_size=224"};
  sets.insert(sets.end(), args.sets.begin(), args.sets.end());
  const emt::GraphFile file = emt::parse_graph_file(args.graph, sets);
  emt::BenchOptions options;
  if (args.threads > 0) options.threads = {args.threads};
  options.iterations = args.iterations;
  options.backend = args.backend;
  options.baselines = args.baselines;
  options.profile = args.profile;
  options.source_dir = std::filesystem::current_path();
  options.ort_model = args.ort_model;
  options.precision = args.precision;
  options.weights = args.weights;
  // tools/setup.sh installs onnxruntime-node next to the build: <build>/ort.
  const auto build_dir =
      std::filesystem::read_symlink("/proc/self/exe").parent_path().parent_path();
  setenv("EMT_ORT_DIR", (build_dir / "ort").c_str(), 0);
  setenv("EMT_BENCH_SIZE", std::to_string(file.config.get_int("data.input_size")).c_str(), 1);
  const auto results = emt::run_bench(file, options, std::cout);
  if (!args.json.empty()) {
    nlohmann::json j;
    for (const auto& [threads, figures] : results)
      for (const auto& [key, value] : figures) j["threads_" + std::to_string(threads)][key] = value;
    emt::write_file_atomic(args.json, j.dump(2) + "\n");
  }
  return 0;
}

// libgomp (oneDNN's threading runtime) reads its wait policy once, when it loads. By default
// its idle threads spin for 300,000 rounds, which steals the cores from TBB work between
// primitives; with no spin at all (OMP_WAIT_POLICY=passive) every primitive waits for its
// threads to wake (EMT-Net batch-1 inference on 2 threads: 9.7 ms). A short spin of 20,000
// rounds, tens of microseconds, catches the next primitive and then sleeps: 5.8 ms, with the
// same batch-16 and training throughput. The setting only takes before the process starts, so
// the engine re-executes itself once with it, unless the user chose a policy.
void ensure_short_openmp_spin(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  setenv("GOMP_SPINCOUNT", "20000", 1);
  execv("/proc/self/exe", argv);  // returns only on failure: then run with the default policy
}

int main(int argc, char** argv) {
  ensure_short_openmp_spin(argv);
  const Args args = parse_args(argc, argv);
  try {
    emt::init_threading(args.threads);
    if (args.command == "bench") return run_bench_command(args);
    if (args.command == "experiment") return run_experiment_command(args);
    if (args.command == "eval") return run_eval_command(args);
    if (args.command == "predict") return run_predict_command(args);
    if (args.command == "import-tflite" || args.command == "import-onnx-backbone")
      return run_import_tflite_command(args);
    if (args.command == "import-onnx") {
      // args.graph is the ONNX model; both files are written only when the whole import succeeds.
      const emt::OnnxImport imported = emt::import_onnx(args.graph, args.out, args.weights_out);
      for (const std::string& note : imported.notes) std::cerr << "note: " << note << "\n";
      std::cerr << "wrote " << args.out << " (" << imported.onnx_ops.size() << " ONNX nodes) and "
                << args.weights_out << " (" << imported.weights.tensors.size() << " tensors)\n";
      return 0;
    }
    const emt::GraphFile file = emt::parse_graph_file(args.graph, args.sets);
    auto graph = std::make_shared<const emt::Graph>(file.graph);
    if (args.verbose_dispatch) {
      // bf16 exists only in the fused inference plan, so that is the one shown for it.
      const bool bf16 = args.precision == emt::Precision::kBf16;
      std::cerr << emt::format_dispatch(emt::compile(graph, args.batch.value_or(1), args.backend,
                                                     {.fuse = bf16, .precision = args.precision}));
    }
    if (args.command == "check") {
      std::cout << emt::format_summary(emt::compile(graph, args.batch.value_or(1), args.backend));
    } else if (args.command == "export-onnx") {
      emt::Model model(file, 1);
      model.params().load_tensors(emt::read_safetensors(args.weights), args.weights);
      emt::export_onnx(model, args.out, {args.logits, &file.config});
      std::cerr << "wrote " << args.out << "\n";
    } else if (args.command == "plan") {
      std::cout << emt::format_plan(emt::compile(graph, args.batch.value_or(1), args.backend));
    } else {
      emt::RunOptions options;
      options.out_dir = args.out.empty() ? file.config.get_string("output.dir") : args.out;
      options.resume = args.resume;
      options.backend = args.backend;
      options.console = args.quiet ? nullptr : &std::cerr;
      emt::run_pipeline(file, options);
    }
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  return 0;
}
