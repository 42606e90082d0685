// Every input a fuzz target (fuzz/, tools/fuzz.sh) found a crash, hang or runaway allocation
// with, kept under tests/fuzz_regressions/<target>/, replayed through the reader it broke: each
// must now be read or refused with an exception (each fix also has a test of its own where the
// reader is tested). ONNX inputs are replayed by tools/fuzz.sh, the ONNX import living outside
// the engine's core.
#include <gtest/gtest.h>

#include <exception>
#include <filesystem>
#include <functional>
#include <string>

#include "engine/data/readers.h"
#include "engine/dsl/parser.h"
#include "engine/import/tflite.h"
#include "engine/io/safetensors.h"
#include "mobile/artifact.h"

namespace emt {
namespace {

namespace fs = std::filesystem;

using Reader = std::function<void(const fs::path&)>;

// Runs every file of the target's folder through `read`; returns how many there were.
int replay(const std::string& target, const Reader& read) {
  const fs::path dir = fs::path("tests/fuzz_regressions") / target;
  int count = 0;
  if (!fs::is_directory(dir)) return count;
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    ++count;
    try {
      read(e.path());
    } catch (const std::exception&) {
      // A refusal is the expected answer to most of these files.
    }
  }
  return count;
}

TEST(FuzzRegressions, EveryKeptInputIsReadOrRefused) {
  int replayed = 0;
  replayed += replay("graph", [](const fs::path& p) { parse_graph_file(p); });
  replayed += replay("safetensors", [](const fs::path& p) { read_safetensors(p); });
  replayed += replay("image", [](const fs::path& p) { read_mask(p, {}); });
  replayed += replay("csv", [](const fs::path& p) {
    ReadReport report;
    read_csv_manifest(p, {}, report);
  });
  replayed += replay("tflite", [](const fs::path& p) {
    const TfliteModel model = read_tflite(p);
    tflite_convolutions(model, p.string());
  });
  replayed += replay("emtm", [](const fs::path& p) { mobile::read_artifact(p); });
  EXPECT_GT(replayed, 0) << "no regression inputs found: run from the source folder";
}

}  // namespace
}  // namespace emt
