// TFLite models as the backbone importer reads them (engine/import/tflite.cpp): the flatbuffer,
// every tensor's dequantisation, and the convolutions moved to the engine's layout.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <span>

#include "engine/import/tflite.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string source = "fuzz.tflite";
  try {
    const emt::TfliteModel model = emt::parse_tflite(std::span(data, size), source);
    for (size_t t = 0; t < model.tensors.size(); ++t) {
      try {
        emt::tflite_dequantize(model, static_cast<int>(t), source);
      } catch (const std::exception&) {
      }
    }
    emt::tflite_convolutions(model, source);
  } catch (const std::exception&) {
  }
  return 0;
}
