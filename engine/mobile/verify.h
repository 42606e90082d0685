// graph2mobile's self-check: the written model, run by the mobile runtime, against the engine
// running the same weights, on phantom images at the model's input size. A user shipping a model
// to phones gets a number for how faithfully it was compiled, without a phone.
#pragma once

#include <cstdint>

#include "engine/dsl/parser.h"
#include "engine/io/safetensors.h"
#include "mobile/artifact.h"

namespace emt {

struct MobileCheck {
  int64_t images = 0;
  double max_cls_diff = 0;    // max |p_mobile - p_engine| of the classifier
  double max_seg_diff = 0;    // max |p_mobile - p_engine| over mask pixels
  double mask_agreement = 1;  // share of mask pixels on the same side of 0.5 in both
};

// The engine runs the fused oneDNN program (what `engine eval` and `engine predict` run).
// Throws as lower_to_mobile does when the graph and weights disagree.
MobileCheck check_against_engine(const GraphFile& file, const SafetensorsFile& weights,
                                 const mobile::Artifact& artifact, int64_t images = 8);

}  // namespace emt
