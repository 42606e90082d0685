// The prefetching batch loader against the serial loop it replaces: for every prefetch depth,
// with augmentation on and off, each step holds exactly the samples that calling augment()
// directly gives, in step order; a failure while preparing a batch reaches the consumer.
#include "engine/data/loader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "engine/data/augment.h"
#include "engine/runtime/threading.h"

namespace {

using emt::AugmentConfig;
using emt::BatchLoader;
using emt::LoaderConfig;
using emt::Sample;

constexpr int kSide = 24;
constexpr uint64_t kSeed = 17;
constexpr int64_t kEpoch = 3;
const emt::Normalization kNorm{0.5f, 0.25f};

// Noise images with a square lesion mask: enough structure for every augmentation to change
// them, and cheap to make.
std::vector<Sample> noise_samples(int count, int channels) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> pixel(-2.0f, 2.0f);
  std::vector<Sample> samples(static_cast<size_t>(count));
  for (int k = 0; k < count; ++k) {
    Sample& s = samples[static_cast<size_t>(k)];
    s.id = "noise" + std::to_string(k);
    s.label = k % 2;
    s.image.resize(static_cast<size_t>(channels) * kSide * kSide);
    for (float& v : s.image) v = pixel(rng);
    s.mask.assign(static_cast<size_t>(kSide) * kSide, 0.0f);
    for (int y = 4 + k % 5; y < 14 + k % 5; ++y)
      for (int x = 6; x < 16 + k % 3; ++x) s.mask[static_cast<size_t>(y * kSide + x)] = 1.0f;
  }
  return samples;
}

std::vector<int> shuffled_order(size_t count) {
  std::vector<int> order(count);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(11));
  return order;
}

bool same_bytes(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

LoaderConfig loader_config(int64_t batch, int64_t prefetch, bool augment) {
  LoaderConfig config;
  config.batch = batch;
  config.prefetch_batches = prefetch;
  config.augment.enabled = augment;
  config.seed = kSeed;
  config.norm = kNorm;
  return config;
}

class BatchLoaderTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override { emt::init_threading(GetParam()); }
};

// The old trainer's loop: augment(sample, augment_seed(seed, epoch, index)) per sample, each
// step the next `batch` entries of the order, the partial batch at the end dropped.
TEST_P(BatchLoaderTest, DeliversTheSerialLoopsBatchesInStepOrderForEveryDepth) {
  const std::vector<Sample> samples = noise_samples(23, 2);
  const std::vector<int> order = shuffled_order(samples.size());
  constexpr int64_t kBatch = 4;
  constexpr int64_t kSteps = 5;  // 23 / 4, three samples dropped
  const AugmentConfig augment;   // the defaults: every transform on
  for (const bool augmented : {true, false}) {
    for (const int64_t prefetch : {0, 1, 2, 7}) {
      SCOPED_TRACE(std::string(augmented ? "augmented" : "plain") + " prefetch " +
                   std::to_string(prefetch));
      BatchLoader loader(samples, order, kEpoch, loader_config(kBatch, prefetch, augmented));
      ASSERT_EQ(loader.steps(), kSteps);
      for (int64_t step = 0; step < kSteps; ++step) {
        const auto batch = loader.next();
        ASSERT_EQ(static_cast<int64_t>(batch.size()), kBatch);
        // Time for the graph to run ahead: a buffer it overwrote while held would show below.
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        for (int64_t i = 0; i < kBatch; ++i) {
          const int index = order[static_cast<size_t>(step * kBatch + i)];
          const Sample& src = samples[static_cast<size_t>(index)];
          const Sample& got = *batch[static_cast<size_t>(i)];
          if (!augmented) {
            EXPECT_EQ(&got, &src) << "step " << step << " item " << i << ": a copy, not the sample";
            continue;
          }
          Sample want;
          emt::augment(src, want, augment, emt::augment_seed(kSeed, kEpoch, index), kNorm);
          ASSERT_FALSE(same_bytes(want.image, src.image)) << "augmentation changed nothing";
          EXPECT_EQ(got.id, src.id) << "step " << step << " item " << i;
          EXPECT_EQ(got.label, src.label) << "step " << step << " item " << i;
          EXPECT_TRUE(same_bytes(got.image, want.image)) << "step " << step << " item " << i;
          EXPECT_TRUE(same_bytes(got.mask, want.mask)) << "step " << step << " item " << i;
        }
      }
      EXPECT_THROW(loader.next(), std::out_of_range);
    }
  }
}

// The sample at order position 13 (step 3 of batch 4) has an image of the wrong size, which
// augment() refuses: steps 0-2 still arrive intact and step 3 rethrows augment's exception.
TEST_P(BatchLoaderTest, AnExceptionWhilePreparingABatchReachesTheConsumerAtItsStep) {
  std::vector<Sample> samples = noise_samples(24, 1);
  const std::vector<int> order = shuffled_order(samples.size());
  Sample& bad = samples[static_cast<size_t>(order[13])];
  bad.image.resize(bad.image.size() - 7);
  for (const int64_t prefetch : {0, 2}) {
    SCOPED_TRACE("prefetch " + std::to_string(prefetch));
    BatchLoader loader(samples, order, kEpoch, loader_config(4, prefetch, true));
    for (int step = 0; step < 3; ++step) EXPECT_NO_THROW(loader.next()) << "step " << step;
    try {
      loader.next();
      ADD_FAILURE() << "step 3 holds a bad sample but was delivered";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(bad.id), std::string::npos) << e.what();
    }
  }
}

// Destroying a loader with batches in flight, or before its first batch, returns.
TEST_P(BatchLoaderTest, AbandonedEpochEndsWithoutWaitingForTheRest) {
  const std::vector<Sample> samples = noise_samples(40, 1);
  const std::vector<int> order = shuffled_order(samples.size());
  { BatchLoader untouched(samples, order, kEpoch, loader_config(4, 3, true)); }
  BatchLoader loader(samples, order, kEpoch, loader_config(4, 3, true));
  loader.next();
  loader.next();
}

TEST_P(BatchLoaderTest, BadSettingsAreRefusedNamingThem) {
  const std::vector<Sample> samples = noise_samples(8, 1);
  const std::vector<int> order = shuffled_order(samples.size());
  EXPECT_THROW(BatchLoader(samples, order, 0, loader_config(0, 2, true)), std::invalid_argument);
  EXPECT_THROW(BatchLoader(samples, order, 0, loader_config(4, -1, true)), std::invalid_argument);
  try {
    BatchLoader(samples, {0, 1, 8, 2}, 0, loader_config(2, 2, true));
    ADD_FAILURE() << "sample index 8 of 8 samples was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("order[2] = 8"), std::string::npos) << e.what();
  }
}

// One TBB thread (no worker threads: the consumer must prepare the batches itself) and two.
INSTANTIATE_TEST_SUITE_P(Threads, BatchLoaderTest, ::testing::Values(1, 2),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return std::to_string(info.param) + "threads";
                         });

}  // namespace
