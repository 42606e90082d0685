#include "tests/onnx/ort_runner.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>
#include <string_view>

#include "engine/io/atomic_file.h"

namespace emt::test {
namespace {

namespace fs = std::filesystem;

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

fs::path source_dir() {
  const char* dir = std::getenv("EMT_SOURCE_DIR");
  return dir ? fs::path(dir) : fs::current_path();
}

fs::path ort_dir() {
  if (const char* dir = std::getenv("EMT_ORT_DIR")) return dir;
#ifdef EMT_ORT_DEFAULT_DIR
  return EMT_ORT_DEFAULT_DIR;
#else
  return source_dir() / "build" / "ort";
#endif
}

std::string ort_unavailable() {
  if (std::system("node --version >/dev/null 2>&1") != 0)
    return "node is not installed (Node.js runs ONNX Runtime for this test)";
  const fs::path package = ort_dir() / "node_modules" / "onnxruntime-node" / "package.json";
  if (!fs::exists(package))
    return "onnxruntime-node is not installed (no " + package.string() +
           "); tools/setup.sh installs it, or set EMT_ORT_DIR to a folder holding node_modules";
  return "";
}

std::map<std::string, OrtOutput> run_ort(const fs::path& work_dir, const fs::path& model_path,
                                         const std::vector<float>& input, const Shape& shape) {
  const fs::path input_path = work_dir / "input.bin";
  emt::write_file_atomic(input_path, std::string(reinterpret_cast<const char*>(input.data()),
                                                 input.size() * sizeof(float)));
  const fs::path prefix = work_dir / "ort_";
  const fs::path err = work_dir / "ort.err";
  std::string cmd = "EMT_ORT_DIR=" + quote(ort_dir().string()) + " ORT_THREADS=2 node " +
                    quote((source_dir() / "tools" / "ort" / "run_model.js").string()) + " " +
                    quote(model_path.string()) + " " + quote(input_path.string());
  // Appended piece by piece: GCC 12 misreads " " + <temporary string> (a false -Wrestrict).
  for (int64_t d : shape) {
    cmd += ' ';
    cmd += std::to_string(d);
  }
  cmd += ' ';
  cmd += quote(prefix.string());
  cmd += " 2>";
  cmd += quote(err.string());
  std::map<std::string, OrtOutput> outputs;
  if (std::system(cmd.c_str()) != 0) {
    ADD_FAILURE() << "ONNX Runtime failed: " << cmd << "\n" << emt::read_file(err);
    return outputs;
  }
  for (const auto& entry : fs::directory_iterator(work_dir)) {
    const std::string file = entry.path().filename().string();
    if (file.rfind("ort_", 0) != 0 || entry.path().extension() != ".bin") continue;
    const std::string name = entry.path().stem().string().substr(4);
    OrtOutput& out = outputs[name];
    std::istringstream dims(emt::read_file(work_dir / ("ort_" + name + ".shape")));
    for (int64_t d; dims >> d;) out.shape.push_back(d);
    const std::string data = emt::read_file(entry.path());
    out.data.resize(data.size() / sizeof(float));
    std::memcpy(out.data.data(), data.data(), out.data.size() * sizeof(float));
  }
  return outputs;
}

std::vector<float> random_input(int64_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(count));
  for (float& x : v) x = d(rng);
  return v;
}

void randomize_params(Model& model, uint32_t seed) {
  std::mt19937 rng(seed);
  const auto fill = [&](std::vector<float>& v, float lo, float hi) {
    std::uniform_real_distribution<float> d(lo, hi);
    for (float& x : v) x = d(rng);
  };
  for (const std::string& name : model.params().names()) {
    std::vector<float>& v = model.params().at(name).value;
    if (ends_with(name, ".running_var"))
      fill(v, 0.5f, 2.0f);
    else if (ends_with(name, ".running_mean"))
      fill(v, -0.3f, 0.3f);
    else if (ends_with(name, ".gamma"))
      fill(v, 0.6f, 1.4f);
    else if (ends_with(name, ".beta") || ends_with(name, ".bias"))
      fill(v, -0.2f, 0.2f);
  }
}

}  // namespace emt::test
