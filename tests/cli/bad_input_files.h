// The hostile files of the bad-input catalogue (tests/bad_inputs/README.md), written into one
// folder: graph files, weights, images, manifests and models, each broken in one way.
#pragma once

#include <filesystem>
#include <string>

namespace emt::test {

// Writes every input into dir. engine and graph2mobile are the binaries that make the valid
// ONNX and .emtm models the truncated ones are cut from.
void write_bad_inputs(const std::filesystem::path& dir, const std::string& engine,
                      const std::string& graph2mobile);

}  // namespace emt::test
