#include "engine/data/loader.h"

#include <tbb/flow_graph.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <stdexcept>
#include <string>

namespace emt {

struct BatchLoader::Slot {
  std::vector<Sample> augmented;  // reused from step to step; empty when augmentation is off
  std::vector<const Sample*> batch;
  std::exception_ptr error;
  std::atomic<int64_t> ready{-1};  // the step whose batch (or error) the slot holds
};

struct BatchLoader::Nodes {
  tbb::task_arena arena;
  std::unique_ptr<tbb::flow::graph> graph;
  std::unique_ptr<tbb::flow::input_node<int64_t>> steps;
  std::unique_ptr<tbb::flow::limiter_node<int64_t>> window;
  std::unique_ptr<tbb::flow::function_node<int64_t>> fill;
};

namespace {

int64_t checked_steps(const std::vector<Sample>& samples, const std::vector<int>& order,
                      const LoaderConfig& config) {
  if (config.batch < 1)
    throw std::invalid_argument("batch loader: batch " + std::to_string(config.batch) +
                                " is not positive");
  if (config.prefetch_batches < 0)
    throw std::invalid_argument("batch loader: prefetch depth " +
                                std::to_string(config.prefetch_batches) + " is negative");
  for (size_t k = 0; k < order.size(); ++k)
    if (order[k] < 0 || static_cast<size_t>(order[k]) >= samples.size())
      throw std::invalid_argument("batch loader: order[" + std::to_string(k) +
                                  "] = " + std::to_string(order[k]) + " is not one of the " +
                                  std::to_string(samples.size()) + " samples");
  return static_cast<int64_t>(order.size()) / config.batch;
}

}  // namespace

BatchLoader::BatchLoader(const std::vector<Sample>& samples, std::vector<int> order, int64_t epoch,
                         const LoaderConfig& config)
    : samples_(samples),
      order_(std::move(order)),
      epoch_(epoch),
      config_(config),
      steps_(checked_steps(samples, order_, config)),
      ring_(static_cast<size_t>(config.prefetch_batches + 1)),
      nodes_(std::make_unique<Nodes>()) {
  const auto batch = static_cast<size_t>(config_.batch);
  for (Slot& slot : ring_) {
    slot.batch.resize(batch);
    if (!config_.augment.enabled) continue;
    slot.augmented.resize(batch);
    for (size_t i = 0; i < batch; ++i) slot.batch[i] = &slot.augmented[i];
  }
  // Built inside the arena so that the graph's tasks run there (see the header).
  nodes_->arena.execute([this] {
    using namespace tbb::flow;
    Nodes& n = *nodes_;
    n.graph = std::make_unique<graph>();
    n.steps = std::make_unique<input_node<int64_t>>(
        *n.graph, [this, next = int64_t{0}](tbb::flow_control& control) mutable {
          if (next >= steps_ || stop_.load()) {
            control.stop();
            return int64_t{0};
          }
          return next++;
        });
    // One token per ring slot: the step the consumer holds and the ones prepared ahead of it.
    n.window = std::make_unique<limiter_node<int64_t>>(*n.graph, ring_.size());
    n.fill = std::make_unique<function_node<int64_t>>(*n.graph, unlimited, [this](int64_t step) {
      prepare(step);
      return continue_msg();
    });
    make_edge(*n.steps, *n.window);
    make_edge(*n.window, *n.fill);
    n.steps->activate();
  });
}

BatchLoader::~BatchLoader() {
  stop_.store(true);
  nodes_->graph->cancel();
  try {
    nodes_->graph->wait_for_all();
  } catch (...) {  // NOLINT(bugprone-empty-catch): the abandoned batches have no one to tell
  }
}

void BatchLoader::prepare(int64_t step) {
  if (stop_.load()) return;
  Slot& slot = ring_[static_cast<size_t>(step) % ring_.size()];
  const int64_t first = step * config_.batch;
  // Caught here and rethrown by next() for this step, so the steps before it are still
  // delivered; an exception escaping a node would cancel the whole graph.
  slot.error = nullptr;
  try {
    if (config_.augment.enabled) {
      tbb::parallel_for(int64_t{0}, config_.batch, [&](int64_t i) {
        const int index = order_[static_cast<size_t>(first + i)];
        augment(samples_[static_cast<size_t>(index)], slot.augmented[static_cast<size_t>(i)],
                config_.augment, augment_seed(config_.seed, epoch_, index), config_.norm);
      });
    } else {
      for (int64_t i = 0; i < config_.batch; ++i)
        slot.batch[static_cast<size_t>(i)] =
            &samples_[static_cast<size_t>(order_[static_cast<size_t>(first + i)])];
    }
  } catch (...) {
    slot.error = std::current_exception();
  }
  slot.ready.store(step, std::memory_order_release);
}

std::span<const Sample* const> BatchLoader::next() {
  Nodes& n = *nodes_;
  if (handed_out_ >= 0) n.window->decrementer().try_put(tbb::flow::continue_msg());
  const int64_t step = handed_out_ + 1;
  if (step >= steps_)
    throw std::out_of_range("batch loader: step " + std::to_string(step + 1) + " asked for, the " +
                            "epoch has " + std::to_string(steps_));
  handed_out_ = step;
  Slot& slot = ring_[static_cast<size_t>(step) % ring_.size()];
  // The limiter has admitted this step (the consumer holds no other), so once the graph is
  // idle it is done; waiting for all lets this thread prepare batches instead of sleeping,
  // which also keeps the loader going when TBB has no worker threads (--threads 1).
  if (slot.ready.load(std::memory_order_acquire) != step) n.graph->wait_for_all();
  if (slot.ready.load(std::memory_order_acquire) != step)
    throw std::logic_error("batch loader: the graph went idle before step " +
                           std::to_string(step + 1) + " was prepared");
  if (slot.error) std::rethrow_exception(slot.error);
  return slot.batch;
}

}  // namespace emt
