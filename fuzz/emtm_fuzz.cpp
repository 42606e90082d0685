// Mobile model files (.emtm) as the mobile runtime loads them (mobile/artifact.cpp).
#include <cstddef>
#include <cstdint>
#include <exception>

#include "fuzz/fuzz_input.h"
#include "mobile/artifact.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = emt::fuzz::write_input(data, size, "input.emtm");
  try {
    emt::mobile::read_artifact(path);
  } catch (const std::exception&) {
  }
  return 0;
}
