// Training batches prepared ahead of the step that trains on them: a TBB flow graph admits step
// numbers in order (input_node), bounds how many are prepared but not yet consumed (limiter_node,
// its tokens returned by the consumer) and augments each admitted step's samples into a ring of
// reused buffers (function_node, a parallel_for over the batch inside), while the trainer runs
// the step before. The graph lives in a task arena of its own, so a kernel's parallel_for on the
// training thread never picks up a batch's preparation in the middle of a step.
//
// Which images a step holds and how they are augmented depend only on (order, batch, seed,
// epoch, sample index), never on the prefetch depth, thread count or timing: a sample's
// augmentation is augment(sample, augment_seed(seed, epoch, index)), as in a serial loop.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <span>
#include <vector>

#include "engine/data/augment.h"
#include "engine/data/preprocess.h"

namespace emt {

struct LoaderConfig {
  int64_t batch = 16;
  int64_t prefetch_batches = 2;  // batches prepared ahead of the one training; 0: on demand
  AugmentConfig augment;         // disabled: the stored samples are handed out, never copied
  uint64_t seed = 1;             // train.seed, which augment_seed mixes with epoch and index
  Normalization norm;
};

class BatchLoader {
 public:
  // Step s holds samples[order[s * batch + i]] for i < batch; the trailing partial batch is
  // dropped. samples and order must outlive the loader. Preparation starts at once. Throws
  // std::invalid_argument for a batch < 1, a negative prefetch depth or an index out of range.
  BatchLoader(const std::vector<Sample>& samples, std::vector<int> order, int64_t epoch,
              const LoaderConfig& config);
  // Stops preparation (batches in flight are cancelled) and waits for the graph to go idle.
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  int64_t steps() const { return steps_; }

  // The next step's samples, in step order, blocking until they are ready; the calling thread
  // helps prepare them meanwhile. The pointers stay valid until the next call, which hands the
  // buffer back for a later step. An exception thrown while preparing the step is rethrown here.
  // Throws std::out_of_range after the last step.
  std::span<const Sample* const> next();

 private:
  struct Slot;
  struct Nodes;

  void prepare(int64_t step);

  const std::vector<Sample>& samples_;
  const std::vector<int> order_;
  const int64_t epoch_;
  const LoaderConfig config_;
  const int64_t steps_;
  std::vector<Slot> ring_;   // step s uses ring_[s % ring_.size()]
  int64_t handed_out_ = -1;  // the step whose buffer the consumer holds
  std::atomic<bool> stop_{false};
  std::unique_ptr<Nodes> nodes_;  // arena, graph and nodes
};

}  // namespace emt
