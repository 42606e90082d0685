// Initial weights for training: a safetensors file (e.g. `engine import-tflite` output) whose
// tensors replace the initialisation of the parameters they name, the others keeping theirs.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "engine/io/safetensors.h"
#include "engine/runtime/params.h"

namespace emt {

struct InitWeightsReport {
  std::vector<std::string> loaded;  // params replaced from the file, in the store's order
  std::vector<std::string> kept;    // params the file lacks: left at their initialisation
  std::vector<std::string> unused;  // tensors of the file that name no param of the graph

  // "loaded 135 of 221 tensors from F (86 kept their initialisation; 0 unused)".
  std::string summary(const std::string& source) const;
};

// Every tensor of the file that names a parameter must have its shape (else std::runtime_error
// naming both, and nothing is changed); a file that names none of them is an error too (the
// wrong file, or a graph whose names changed). Marks the store updated.
InitWeightsReport load_initial_weights(ParamStore& params, const SafetensorsFile& file,
                                       const std::string& source);
InitWeightsReport load_initial_weights(ParamStore& params, const std::filesystem::path& path);

}  // namespace emt
