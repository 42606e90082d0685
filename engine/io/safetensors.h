// Weights and checkpoints in the safetensors format, so Python users read them with standard
// tools: 8-byte little-endian header length N, N bytes of JSON header, then raw tensor data.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "ops/core/tensor.h"

namespace emt {

struct NamedTensor {
  std::string name;
  Shape shape;
  std::vector<float> data;
};

struct SafetensorsFile {
  std::map<std::string, std::string> metadata;
  // Kept in file order: write lays the data out in this order and read returns it so.
  std::vector<NamedTensor> tensors;

  const NamedTensor* find(const std::string& name) const;
};

// F32 only. Throws std::invalid_argument for a tensor whose data does not match its shape or a
// duplicate or reserved name, std::runtime_error "<path>: <reason>" when writing fails.
void write_safetensors(const std::filesystem::path& path, const SafetensorsFile& file);

// Every malformed or unsupported file throws std::runtime_error "<path>: <reason>".
SafetensorsFile read_safetensors(const std::filesystem::path& path);

}  // namespace emt
