// safetensors files as weights and checkpoints are read (engine/io/safetensors.cpp).
#include <cstddef>
#include <cstdint>
#include <exception>

#include "engine/io/safetensors.h"
#include "fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = emt::fuzz::write_input(data, size, "input.safetensors");
  try {
    emt::read_safetensors(path);
  } catch (const std::exception&) {
  }
  return 0;
}
