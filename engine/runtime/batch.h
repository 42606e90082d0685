// Copies preprocessed samples into an executor's input and target buffers.
#pragma once

#include <span>

#include "engine/data/preprocess.h"
#include "engine/runtime/executor.h"

namespace emt {

// Names the graph binds: the image input, and the targets it declares ("label", "mask").
inline constexpr const char* kImageInput = "image";
inline constexpr const char* kLabelTarget = "label";
inline constexpr const char* kMaskTarget = "mask";
inline constexpr const char* kClassOutput = "cls";
inline constexpr const char* kMaskOutput = "seg";

// samples.size() must equal the executor's batch; sizes are checked against the graph's shapes.
void load_batch(Executor& exec, std::span<const Sample* const> samples);

}  // namespace emt
