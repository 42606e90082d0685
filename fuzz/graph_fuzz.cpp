// Graph text through the DSL: TOML parsing, includes, blocks and their expansion, settings.
// Exceptions are the readers' answer to a bad file; only crashes, sanitizer reports, leaks,
// hangs and running out of memory are findings.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>

#include "engine/dsl/parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    // Named as a file in graphs/, so that the seeds' includes (lib/*.toml) resolve.
    emt::parse_graph_text(text, EMT_SOURCE_DIR "/graphs/fuzz_input.toml");
  } catch (const std::exception&) {
  }
  return 0;
}
