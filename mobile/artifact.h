// The compiled mobile model (.emtm): what graph2mobile writes (engine/mobile/lower.h) and the
// runtime runs (mobile/runtime.h). It is the graph after the inference passes, reduced to what a
// phone needs: values with their per-image shapes, steps in execution order with every geometry
// resolved (padding included) and batch norms already folded into the convolutions' weights,
// the objective (the same loss terms as the graph file, evaluated by ops/loss), and one weight
// blob. Nothing in it needs the engine, TOML or a JSON parser to read.
//
// File layout, little-endian: the 8-byte magic "EMTMOBL\x02", then fields in the order of the
// structs below (u32 counts and numbers, strings as u32 length + bytes, floats as IEEE 754), and
// the weights last, as float32 or float16 (WeightStorage), so that a reader can check sizes
// before it allocates.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "ops/loss/loss.h"

namespace emt::mobile {

enum class StepKind : uint32_t {
  kConv2d,           // geometry, weight [cout, cin / groups, k, k], optional bias, activation
  kConvTranspose2d,  // geometry of the conv2d it transposes, weight [cout, cin, k, k] in those
                     // terms
  kAdd,              // two inputs of one shape
  kGlobalAvgPool,    // [C, H, W] -> [C, 1, 1]
  kDense,            // [K, 1, 1] -> [out, 1, 1], weight [out, K], optional bias
  kRelu,
  kRelu6,
  kSigmoid,
};
const char* step_kind_name(StepKind kind);

enum class Activation : uint32_t { kNone, kRelu, kRelu6 };

// Per image; the batch is the runtime's.
struct ValueDesc {
  std::string name;
  uint32_t channels = 0, height = 1, width = 1;
  uint64_t size() const { return uint64_t{channels} * height * width; }
};

// A convolution in conv2d terms (for kConvTranspose2d: the conv2d whose adjoint it is, so its
// input is that conv's output [cout, ho, wo] and its output that conv's input [cin, h, w]).
struct ConvDesc {
  uint32_t cin = 0, h = 0, w = 0, cout = 0, ho = 0, wo = 0;
  uint32_t kernel = 1, stride = 1, groups = 1;
  uint32_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  Activation activation = Activation::kNone;
};

// A slice of Artifact::weights; count 0 means absent (a convolution without bias).
struct WeightRef {
  uint64_t offset = 0, count = 0;
};

struct StepDesc {
  StepKind kind = StepKind::kAdd;
  std::string name;  // the graph node (with what fused into it), for messages
  std::vector<uint32_t> inputs;
  uint32_t output = 0;
  ConvDesc conv;  // kConv2d, kConvTranspose2d
  WeightRef weight, bias;
};

// A loss term over values (input) and targets (target, by index into Artifact::targets).
struct LossTermDesc {
  LossKind kind = LossKind::kWeightedBce;
  uint32_t input = 0, target = 0;
  double weight = 1.0, pos_weight = 1.0, eps = 1.0;
};

// How the file stores the weights; in memory they are always float32.
enum class WeightStorage : uint32_t {
  kF32,
  kF16,  // half the file; each weight rounded to 11 significant bits (mobile/half.h)
};

struct Artifact {
  std::string graph;
  std::vector<ValueDesc> values;
  uint32_t image = 0;                       // the value the image is loaded into
  std::map<std::string, uint32_t> outputs;  // "cls", "seg" -> value
  std::vector<ValueDesc> targets;           // "label", "mask" (names and per-image shapes)
  std::vector<StepDesc> steps;
  std::vector<LossTermDesc> objective;
  // Preprocessing and decision settings the weights were trained with ("input_size",
  // "norm_mean", "norm_std", "threshold"), as text.
  std::map<std::string, std::string> metadata;
  WeightStorage weight_storage = WeightStorage::kF32;
  std::vector<float> weights;
};

// Throws std::invalid_argument naming the step or value at fault when indices, shapes or weight
// slices are inconsistent (what read_artifact promises about a file it returns).
void validate(const Artifact& artifact);

// Validates, then writes to a temporary file beside path and renames it over path, so a reader
// never sees half a model. Throws std::runtime_error naming the path on I/O errors, and for
// kF16 storage when a weight is beyond the half-precision range.
void write_artifact(const Artifact& artifact, const std::filesystem::path& path);

// Throws std::runtime_error "<path>: <what>, at byte <offset>" for a file that is not an artifact
// of this version, is truncated, or fails validate().
Artifact read_artifact(const std::filesystem::path& path);

}  // namespace emt::mobile
