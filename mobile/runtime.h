// Runs a mobile artifact (mobile/artifact.h) with the NEON variants of the ops (ops/*/*_neon.h;
// through SIMDe on x86). All memory is taken when the runtime is made: the weights, and one arena
// for every value of up to max_batch images, laid out by liveness so that values that are never
// alive together share bytes. run() allocates nothing, as a phone app calling it per camera
// frame needs.
//
// With threads > 1, the runtime makes threads - 1 workers (mobile/thread_pool.h) and splits each
// step where every output element keeps exactly the arithmetic of the single-threaded run, so the
// results are bit-identical for any thread count: convolutions by images and chunks of output
// channels (a multiple of 8 where possible, for the pointwise kernel's 8-row tiles), depthwise
// convolutions by chunks of channels, other grouped convolutions by images, elementwise steps
// by ranges of elements (multiples of 16 floats); global_avg_pool and dense stay on the calling
// thread. A transposed convolution's output channels are not contiguous in its weights, so those
// weights are repacked once, at construction, into one block per chunk.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "mobile/artifact.h"
#include "mobile/thread_pool.h"
#include "ops/loss/loss.h"

namespace emt::mobile {

class Runtime {
 public:
  // Throws std::invalid_argument for an invalid artifact (validate()), max_batch < 1 or
  // threads < 1.
  Runtime(Artifact artifact, int64_t max_batch = 1, int threads = 1);

  const Artifact& artifact() const { return artifact_; }
  int64_t max_batch() const { return max_batch_; }
  int threads() const { return pool_ ? pool_->threads() : 1; }
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
  void run_step_split(size_t index, int64_t batch);

  // How a step splits over the threads (threads > 1 only): channel chunks of `chunk` channels,
  // `chunks` of them per image; for a transposed convolution its repacked weights at
  // packed_[packed_offset], chunk j's block [g.cout, chunk_j, k, k] at j * chunk * g.cout * k^2.
  struct Split {
    int64_t chunk = 0, chunks = 1;
    size_t packed_offset = 0;
  };

  Artifact artifact_;
  int64_t max_batch_;
  std::unique_ptr<ThreadPool> pool_;  // null for one thread
  std::vector<Split> splits_;         // per step, when pool_
  std::vector<float> packed_;         // transposed convolutions' weights by chunk, when pool_
  std::vector<int64_t> offsets_;      // per value, into arena_ (for max_batch images)
  std::vector<float> arena_;
  int64_t batch_ = 0;  // of the last run
};

}  // namespace emt::mobile
