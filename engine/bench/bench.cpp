#include "engine/bench/bench.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <random>

#include "engine/bench/peak.h"
#include "engine/data/phantom.h"
#include "engine/data/preprocess.h"
#include "engine/eval/metrics.h"
#include "engine/io/atomic_file.h"
#include "engine/io/safetensors.h"
#include "engine/onnx/export.h"
#include "engine/runtime/batch.h"
#include "engine/runtime/model.h"
#include "engine/runtime/threading.h"
#include "engine/train/optimizer.h"

namespace emt {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int64_t kThroughputBatch = 16;
constexpr int kWarmup = 2;

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

// Median wall time of fn over `iterations` runs after the warm-up runs.
template <typename Fn>
double median_seconds(int iterations, Fn&& fn) {
  for (int i = 0; i < kWarmup; ++i) fn();
  std::vector<double> times;
  for (int i = 0; i < iterations; ++i) {
    const auto start = Clock::now();
    fn();
    times.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  return times[times.size() / 2];
}

void random_inputs(Executor& exec) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> pixel(-2.0f, 2.0f);
  Tensor image = exec.value("image");
  for (int64_t i = 0; i < image.numel(); ++i) image.data[i] = pixel(rng);
  for (const GraphInput& t : exec.program().graph->targets) {
    Tensor target = exec.value(t.name);
    for (int64_t i = 0; i < target.numel(); ++i) target.data[i] = (i % 3 == 0) ? 1.0f : 0.0f;
  }
}

std::vector<ParamSlot> slots_of(ParamStore& store) {
  std::vector<ParamSlot> slots;
  for (const std::string& name : store.names()) {
    ParamEntry& e = store.at(name);
    if (e.spec.trainable)
      slots.push_back({name, e.value.data(), e.grad.data(), int64_t(e.value.size()), true});
  }
  return slots;
}

// path as one shell word.
std::string shell_quoted(const fs::path& path) {
  std::string quoted = "'";
  for (const char c : path.string()) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

// Runs a baseline script; its last stdout line is a JSON object of figures. Returns {} (and
// says why) when the tool is missing or fails, so the bench still reports our own figures.
nlohmann::json run_baseline(const std::string& label, const std::string& command,
                            std::ostream& out) {
  const fs::path result =
      fs::temp_directory_path() / ("emt_bench_" + std::to_string(getpid()) + "_" + label + ".json");
  const int status = std::system((command + " > " + result.string() + " 2>&1").c_str());
  std::ifstream in(result);
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  fs::remove(result);
  if (status != 0 || last.empty() || last.front() != '{') {
    out << "  " << label << " baseline skipped: " << (last.empty() ? "no output" : last) << "\n";
    return {};
  }
  return nlohmann::json::parse(last);
}

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string right(const std::string& text, size_t width) {
  return text.size() < width ? std::string(width - text.size(), ' ') + text : " " + text;
}

void print_row(std::ostream& out, const std::string& what, const BenchFigures& f,
               const std::string& key, bool lower_is_better) {
  auto cell = [&](const std::string& k) {
    auto it = f.find(k);
    return it == f.end() ? std::string("-") : fmt("%.1f", it->second);
  };
  out << "  " << what << std::string(what.size() < 26 ? 26 - what.size() : 1, ' ');
  out << right(cell(key), 10) << right(cell("ort_" + key), 10) << right(cell("torch_" + key), 10);
  for (const char* base : {"ort_", "torch_"}) {
    auto ours = f.find(key), theirs = f.find(base + key);
    if (ours == f.end() || theirs == f.end()) {
      out << right("-", 12);
      continue;
    }
    // Printed as "how many times better we are", whichever direction better is.
    const double ratio =
        lower_is_better ? theirs->second / ours->second : ours->second / theirs->second;
    out << right(fmt("%.2fx", ratio), 12);
  }
  out << "\n";
}

// The steps that took longest, per run, from an executor's profile (forward and backward slots
// summed per step).
void print_profile(std::ostream& out, const std::string& what, const Executor& exec,
                   const std::vector<double>& profile, int iterations) {
  const Program& p = exec.program();
  const double runs = iterations + kWarmup;
  std::vector<std::pair<double, std::string>> rows;
  double total = 0;
  for (size_t s = 0; s < p.steps.size(); ++s) {
    const double seconds = (profile[s] + profile[p.steps.size() + s]) / runs;
    total += seconds;
    rows.emplace_back(seconds, p.steps[s].node->name + " (" + p.steps[s].node->op + ", " +
                                   p.steps[s].impl + ", " +
                                   layout_name(p.values[p.steps[s].output].layout) + ")");
  }
  std::sort(rows.rbegin(), rows.rend());
  out << "  per-op time of one " << what << ", " << fmt("%.1f", 1e3 * total)
      << " ms in all, top 15:\n";
  for (size_t i = 0; i < std::min<size_t>(15, rows.size()); ++i)
    out << "    " << fmt("%8.2f ms  ", 1e3 * rows[i].first) << rows[i].second << "\n";
}

// The agreement of bf16 with fp32 inference on a phantom test set, as issue 3 asks it:
// the classifier's probabilities and the masks thresholded at 0.5.
struct Bf16Agreement {
  int images = 0;
  double max_prob_diff = 0;  // max |p_bf16 - p_fp32|
  double mean_dice = 0;      // mean Dice(mask_bf16, mask_fp32); 1 when both are empty
};

constexpr int kAgreementImages = 64;

Bf16Agreement bf16_agreement(const GraphFile& file, Executor& fp32, Executor& bf16) {
  const int64_t size = file.config.get_int("data.input_size");
  const int channels = static_cast<int>(file.graph.inputs.front().shape.front());
  const Normalization norm = normalization(file.config);
  // Another seed than the default training set's, so that trained weights meet unseen images.
  const PhantomConfig phantom{.count = kAgreementImages, .seed = 7};
  Bf16Agreement result;
  double dice_sum = 0;
  const int64_t batch = fp32.program().batch;
  for (int first = 0; first + batch <= kAgreementImages; first += batch) {
    std::vector<Sample> samples;
    for (int i = first; i < first + batch; ++i)
      samples.push_back(
          preprocess(generate_phantom(phantom, i), static_cast<int>(size), channels, norm));
    std::vector<const Sample*> pointers;
    for (const Sample& s : samples) pointers.push_back(&s);
    for (Executor* exec : {&fp32, &bf16}) {
      load_batch(*exec, pointers);
      exec->forward();
    }
    const std::vector<float> p32 = fp32.read(fp32.program().outputs.at(kClassOutput)),
                             p16 = bf16.read(bf16.program().outputs.at(kClassOutput));
    for (size_t i = 0; i < p32.size(); ++i)
      result.max_prob_diff = std::max(result.max_prob_diff, double(std::abs(p16[i] - p32[i])));
    const std::vector<float> m32 = fp32.read(fp32.program().outputs.at(kMaskOutput)),
                             m16 = bf16.read(bf16.program().outputs.at(kMaskOutput));
    // The fp32 mask, thresholded at 0.5, is the target the bf16 mask is scored against.
    const size_t per = m32.size() / static_cast<size_t>(batch);
    for (int64_t k = 0; k < batch; ++k) {
      const std::span<const float> image(m16.data() + k * per, per),
          target(m32.data() + k * per, per);
      dice_sum += mask_score(image, target).dice;
      ++result.images;
    }
  }
  result.mean_dice = dice_sum / result.images;
  return result;
}

}  // namespace

std::string program_json(const Program& program) {
  nlohmann::json steps = nlohmann::json::array();
  for (const Step& s : program.steps) {
    nlohmann::json attrs = nlohmann::json::object();
    for (const auto& [name, value] : s.node->attrs.values())
      std::visit([&, n = name](const auto& v) { attrs[n] = v; }, value);
    nlohmann::json inputs = nlohmann::json::array(), params = nlohmann::json::array();
    for (int v : s.inputs) inputs.push_back(program.values[v].name);
    for (int p : s.params)
      params.push_back({{"name", program.params[p].name}, {"shape", program.params[p].spec.shape}});
    steps.push_back({{"name", s.node->name},
                     {"op", s.node->op},
                     {"attrs", attrs},
                     {"inputs", inputs},
                     {"params", params},
                     {"shape", program.values[s.output].shape}});
  }
  nlohmann::json outputs = nlohmann::json::object();
  for (const auto& [name, v] : program.outputs) outputs[name] = program.values[v].name;
  nlohmann::json terms = nlohmann::json::array();
  for (const LossTerm& t : program.graph->objective.terms)
    terms.push_back({{"loss", loss_kind_name(t.kind)},
                     {"input", t.input},
                     {"target", t.target},
                     {"weight", t.weight},
                     {"pos_weight", t.pos_weight},
                     {"eps", t.eps}});
  nlohmann::json inputs = nlohmann::json::object();
  for (const ValueInfo& v : program.values)
    if (v.kind != ValueKind::kActivation) inputs[v.name] = v.shape;
  return nlohmann::json{{"graph", program.graph->name},
                        {"inputs", inputs},
                        {"steps", steps},
                        {"outputs", outputs},
                        {"objective", terms}}
      .dump(1);
}

std::map<int, BenchFigures> run_bench(const GraphFile& file, const BenchOptions& options,
                                      std::ostream& out) {
  const int64_t size = file.config.get_int("data.input_size");
  const auto graph = std::make_shared<const Graph>(file.graph);
  const Program reference_plan = compile(graph, 1);
  const double macs = static_cast<double>(reference_plan.macs_per_sample());
  const fs::path layers =
      fs::temp_directory_path() / ("emt_bench_layers_" + std::to_string(getpid()) + ".json");
  write_file_atomic(layers, program_json(compile(graph, kThroughputBatch)));

  // ORT runs our own export of the same graph (random weights) unless told otherwise. Exported
  // after the batch-1 figures, so the exporter's copy of the model is not in our peak RSS.
  fs::path ort_model = options.ort_model;

  std::map<int, BenchFigures> results;
  bool first = true;
  for (int threads : options.threads) {
    init_threading(threads);
    BenchFigures& f = results[threads];
    Model model(file, 1, options.backend);
    if (!options.weights.empty())
      model.params().load_tensors(read_safetensors(options.weights), options.weights.string());

    Executor& b1 = model.executor(1, Mode::kEval);
    random_inputs(b1);
    std::vector<double> b1_profile, train_profile;
    if (options.profile) b1.set_profile(&b1_profile);
    f["infer_b1_ms"] = 1e3 * median_seconds(options.iterations, [&] { b1.forward(); });
    // Measured right after the first batch-1 run, before bigger batches grow the process.
    if (first) f["peak_rss_mb"] = peak_rss_mb();
    f["weights_mb"] =
        4.0 * double(reference_plan.trainable_param_count() + reference_plan.state_param_count()) /
        1048576.0;
    f["arena_mb"] = double(b1.arena_bytes()) / 1048576.0;

    Executor& b16 = model.executor(kThroughputBatch, Mode::kEval);
    random_inputs(b16);
    f["infer_b16_img_s"] =
        kThroughputBatch / median_seconds(options.iterations, [&] { b16.forward(); });

    std::optional<Bf16Agreement> agreement;
    if (options.precision == Precision::kBf16) {
      // A second model with the same weights: switching the first one's precision would drop
      // the fp32 executors the agreement compares with. Before the training figure, whose
      // optimizer steps move the first model's weights.
      Model bf16_model(file, 1, options.backend);
      if (!options.weights.empty())
        bf16_model.params().load_tensors(read_safetensors(options.weights),
                                         options.weights.string());
      bf16_model.set_inference_precision(Precision::kBf16);
      Executor& bf16_b1 = bf16_model.executor(1, Mode::kEval);
      random_inputs(bf16_b1);
      f["bf16_infer_b1_ms"] = 1e3 * median_seconds(options.iterations, [&] { bf16_b1.forward(); });
      Executor& bf16_b16 = bf16_model.executor(kThroughputBatch, Mode::kEval);
      random_inputs(bf16_b16);
      f["bf16_infer_b16_img_s"] =
          kThroughputBatch / median_seconds(options.iterations, [&] { bf16_b16.forward(); });
      agreement = bf16_agreement(file, b16, bf16_b16);
      f["bf16_max_prob_diff"] = agreement->max_prob_diff;
      f["bf16_mask_dice"] = agreement->mean_dice;
    }

    Executor& train = model.executor(kThroughputBatch, Mode::kTrain);
    random_inputs(train);
    auto adam = Optimizer::make({});
    const std::vector<ParamSlot> slots = slots_of(model.params());
    if (options.profile) train.set_profile(&train_profile);
    f["train_b16_img_s"] = kThroughputBatch / median_seconds(options.iterations, [&] {
                             train.forward(1);
                             model.params().zero_grads();
                             train.backward();
                             adam->step(slots, 1e-4);
                           });
    f["gflops"] = 2.0 * macs * f["infer_b16_img_s"] / 1e9;

    f["peak_gflops"] = measure_peak_gflops(threads);

    if (options.baselines) {
      if (ort_model.empty()) {
        ort_model = fs::temp_directory_path() / ("emt_bench_" + std::to_string(getpid()) + ".onnx");
        export_onnx(Model(file, 1), ort_model);
      }
      const std::string tools = (options.source_dir / "tools" / "bench").string();
      const std::string ort_env =
          options.ort_dir.empty() ? "" : "EMT_ORT_DIR=" + shell_quoted(options.ort_dir) + " ";
      const nlohmann::json ort =
          run_baseline("ort",
                       ort_env + "node " + tools + "/ort_bench.js " + ort_model.string() + " " +
                           std::to_string(threads) + " " + std::to_string(options.iterations) +
                           " " + std::to_string(size),
                       out);
      for (const auto& [k, v] : ort.items()) f["ort_" + k] = v.get<double>();
      const nlohmann::json torch = run_baseline(
          "torch",
          "LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp /usr/bin/python3 " + tools +
              "/torch_bench.py " + layers.string() + " " + std::to_string(threads) + " " +
              std::to_string(options.iterations),
          out);
      for (const auto& [k, v] : torch.items()) f["torch_" + k] = v.get<double>();
    }

    out << "threads " << threads << ": EMT-Net " << size << "x" << size << " fp32, backend "
        << backend_name(options.backend) << "\n";
    out << "  figure                          ours       ORT   PyTorch  ours vs ORT  vs PyTorch\n";
    print_row(out, "infer batch 1 (ms)", f, "infer_b1_ms", true);
    print_row(out, "infer batch 16 (img/s)", f, "infer_b16_img_s", false);
    print_row(out, "train batch 16 (img/s)", f, "train_b16_img_s", false);
    if (agreement) {
      out << "  bf16 inference: batch 1 " << fmt("%.1f", f["bf16_infer_b1_ms"]) << " ms ("
          << fmt("%.2f", f["infer_b1_ms"] / f["bf16_infer_b1_ms"]) << "x our fp32), batch 16 "
          << fmt("%.1f", f["bf16_infer_b16_img_s"]) << " img/s ("
          << fmt("%.2f", f["bf16_infer_b16_img_s"] / f["infer_b16_img_s"]) << "x our fp32)\n";
      out << "  bf16 vs fp32 on " << agreement->images << " phantom images ("
          << (options.weights.empty() ? "random" : "given") << " weights): max |p_bf16 - p_fp32| "
          << fmt("%.2e", agreement->max_prob_diff) << ", mean mask Dice "
          << fmt("%.4f", agreement->mean_dice) << "\n";
    }
    out << "  achieved " << fmt("%.1f", f["gflops"]) << " GFLOP/s at batch-16 inference = "
        << fmt("%.1f", 100.0 * f["gflops"] / f["peak_gflops"]) << "% of the measured peak "
        << fmt("%.0f", f["peak_gflops"]) << " GFLOP/s\n";
    if (first)
      out << "  peak RSS after batch-1 inference " << fmt("%.0f", f["peak_rss_mb"])
          << " MB (weights " << fmt("%.1f", f["weights_mb"]) << " MB + arena "
          << fmt("%.1f", f["arena_mb"])
          << " MB + 64 MB = " << fmt("%.0f", f["weights_mb"] + f["arena_mb"] + 64)
          << " MB budget)\n";
    if (options.profile) {
      print_profile(out, "batch-1 inference", b1, b1_profile, options.iterations);
      print_profile(out, "training step (forward + backward)", train, train_profile,
                    options.iterations);
    }
    first = false;
  }
  fs::remove(layers);
  if (ort_model != options.ort_model) fs::remove(ort_model);
  return results;
}

}  // namespace emt
