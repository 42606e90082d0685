// Runs a mobile artifact (mobile/artifact.h) with the NEON variants of the ops (ops/*/*_neon.h;
// through SIMDe on x86). All memory is taken when the runtime is made: the weights, and one arena
// for every value of up to max_batch images, laid out by liveness so that values that are never
// alive together share bytes. run() allocates nothing, as a phone app calling it per camera
// frame needs.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "mobile/artifact.h"
#include "ops/loss/loss.h"

namespace emt::mobile {

class Runtime {
 public:
  // Throws std::invalid_argument for an invalid artifact (validate()) or max_batch < 1.
  Runtime(Artifact artifact, int64_t max_batch = 1);

  const Artifact& artifact() const { return artifact_; }
  int64_t max_batch() const { return max_batch_; }
  // Floats in the arena; without sharing it would be the sum of every value's size.
  int64_t arena_floats() const { return static_cast<int64_t>(arena_.size()); }

  // images: batch consecutive images of the image value's shape, already normalised as the
  // artifact's metadata says. Throws std::invalid_argument for a batch outside [1, max_batch]
  // or a size that is not batch images.
  void run(std::span<const float> images, int64_t batch);

  // The named output ("cls", "seg") of the last run: batch x its per-image size. Throws
  // std::out_of_range naming the output when the artifact has none of that name.
  std::span<const float> output(const std::string& name) const;

  // THE objective (ops/loss, the definition training minimises) on the last run. targets holds
  // one span per Artifact::targets entry, in that order, each batch x its per-image size.
  ObjectiveValue objective(std::span<const std::span<const float>> targets) const;

 private:
  float* value_data(uint32_t value) { return arena_.data() + offsets_[value]; }
  const float* value_data(uint32_t value) const { return arena_.data() + offsets_[value]; }
  void run_step(const StepDesc& step, int64_t batch);

  Artifact artifact_;
  int64_t max_batch_;
  std::vector<int64_t> offsets_;  // per value, into arena_ (for max_batch images)
  std::vector<float> arena_;
  int64_t batch_ = 0;  // of the last run
};

}  // namespace emt::mobile
