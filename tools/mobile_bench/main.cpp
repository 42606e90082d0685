// mobile_bench: times the mobile runtime on a graph2mobile model, natively on an ARM device (or
// under qemu-aarch64, which says nothing about a phone's speed) or on x86 through SIMDe.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "mobile/runtime.h"

namespace {

constexpr const char* kUsage =
    R"(usage: mobile_bench MODEL.emtm [--iters N] [--batch B] [--threads T]

Runs the model on random normalised images: one warm-up run, then N timed runs (default 10) of B
images (default 1) on T threads (default 1; the runtime splits each step over them, with results
identical to one thread). Prints the median and best time per run and per image, the weights and
activation arena sizes, and the process's peak resident memory.
)";

[[noreturn]] void usage_error(const std::string& message) {
  std::cerr << "mobile_bench: " << message << "\n(run 'mobile_bench --help' for usage)\n";
  std::exit(2);
}

int positive(const std::string& flag, const char* text) {
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  if (!*text || *end || v < 1)
    usage_error(flag + " expects a positive integer, got '" + text + "'");
  return static_cast<int>(v);
}

// VmHWM from /proc/self/status in MB; 0 where there is no such file.
double peak_rss_mb() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::atof(line.c_str() + 6) / 1024.0;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model;
  int iters = 10, batch = 1, threads = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage_error(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      return 0;
    } else if (arg == "--iters") {
      iters = positive(arg, value());
    } else if (arg == "--batch") {
      batch = positive(arg, value());
    } else if (arg == "--threads") {
      threads = positive(arg, value());
    } else if (arg.rfind("-", 0) == 0) {
      usage_error("unknown option '" + arg + "'");
    } else if (model.empty()) {
      model = arg;
    } else {
      usage_error("takes one model file");
    }
  }
  if (model.empty()) usage_error("needs MODEL.emtm");
  try {
    emt::mobile::Runtime runtime(emt::mobile::read_artifact(model), batch, threads);
    const auto& a = runtime.artifact();
    std::vector<float> images(a.values[a.image].size() * static_cast<uint64_t>(batch));
    std::mt19937 rng(1);
    std::normal_distribution<float> pixel(0.0f, 1.0f);
    for (float& p : images) p = pixel(rng);
    runtime.run(images, batch);
    std::vector<double> ms;
    for (int i = 0; i < iters; ++i) {
      const auto start = std::chrono::steady_clock::now();
      runtime.run(images, batch);
      ms.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count());
    }
    std::sort(ms.begin(), ms.end());
    const double median = ms[ms.size() / 2];
    std::cout << model << " (" << a.graph << ", " << a.values[a.image].channels << "x"
              << a.values[a.image].height << "x" << a.values[a.image].width << ", batch " << batch
              << ", threads " << threads << "): median " << median << " ms per run, "
              << median / batch << " ms per image, best " << ms.front() << " ms; weights "
              << static_cast<double>(a.weights.size()) * 4 / 1e6 << " MB, arena "
              << static_cast<double>(runtime.arena_floats()) * 4 / 1e6 << " MB, peak RSS "
              << peak_rss_mb() << " MB\n";
  } catch (const std::exception& e) {
    std::cerr << "mobile_bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
