// Runtime::run and emt_model_predict allocate nothing (mobile/runtime.h's promise, which a phone
// app calling them per camera frame relies on): this binary's global operator new counts the
// allocations made while a scope is open.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <new>
#include <thread>
#include <vector>

#include "mobile/artifact.h"
#include "mobile/emtnet.h"
#include "mobile/runtime.h"

namespace {

thread_local bool counting = false;
thread_local int allocations = 0;
// The same on every thread (the runtime's workers), while a CountAllThreads scope is open.
std::atomic<bool> counting_all{false};
std::atomic<int> all_allocations{0};

struct CountAllocations {
  CountAllocations() {
    allocations = 0;
    counting = true;
  }
  ~CountAllocations() { counting = false; }
};

struct CountAllThreads {
  CountAllThreads() {
    all_allocations = 0;
    counting_all = true;
  }
  ~CountAllThreads() { counting_all = false; }
};

}  // namespace

// GCC flags free() on what this operator new returned as a mismatch; here it is the pair.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t size) {
  if (counting) ++allocations;
  if (counting_all.load(std::memory_order_relaxed)) all_allocations.fetch_add(1);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace {

using namespace emt::mobile;

// image [1,16,16] -> 3x3 s2 conv relu6 -> depthwise 3x3 -> 1x1 -> transposed 3x3 s2 -> add with
// a 3x3 conv of it -> sigmoid (seg); GAP -> dense -> sigmoid (cls): every step kind.
Artifact model() {
  Artifact a;
  a.graph = "alloc";
  a.values = {{"image", 1, 16, 16},   {"stem", 8, 8, 8},        {"dw", 8, 8, 8},
              {"pw", 4, 8, 8},        {"up", 4, 16, 16},        {"side", 4, 16, 16},
              {"sum", 4, 16, 16},     {"seg_logit", 1, 16, 16}, {"seg", 1, 16, 16},
              {"gap", 8, 1, 1},       {"fc", 4, 1, 1},          {"fc_relu", 4, 1, 1},
              {"cls_logit", 1, 1, 1}, {"cls", 1, 1, 1}};
  const auto w = [&](uint64_t n) {
    WeightRef r{a.weights.size(), n};
    for (uint64_t i = 0; i < n; ++i) a.weights.push_back(0.01f * static_cast<float>(i % 7) - 0.03f);
    return r;
  };
  a.steps = {
      {StepKind::kConv2d,
       "stem",
       {0},
       1,
       {1, 16, 16, 8, 8, 8, 3, 2, 1, 0, 0, 1, 1, Activation::kRelu6},
       w(72),
       w(8)},
      {StepKind::kConv2d,
       "dw",
       {1},
       2,
       {8, 8, 8, 8, 8, 8, 3, 1, 8, 1, 1, 1, 1, Activation::kRelu},
       w(72),
       w(8)},
      {StepKind::kConv2d,
       "pw",
       {2},
       3,
       {8, 8, 8, 4, 8, 8, 1, 1, 1, 0, 0, 0, 0, Activation::kNone},
       w(32),
       {}},
      {StepKind::kConvTranspose2d,
       "up",
       {3},
       4,
       {4, 16, 16, 4, 8, 8, 3, 2, 1, 1, 1, 1, 1, Activation::kRelu},
       w(144),
       w(4)},
      {StepKind::kConv2d,
       "side",
       {4},
       5,
       {4, 16, 16, 4, 16, 16, 3, 1, 1, 1, 1, 1, 1, Activation::kNone},
       w(144),
       w(4)},
      {StepKind::kAdd, "sum", {4, 5}, 6, {}, {}, {}},
      {StepKind::kConv2d,
       "seg_logit",
       {6},
       7,
       {4, 16, 16, 1, 16, 16, 3, 1, 1, 1, 1, 1, 1, Activation::kNone},
       w(36),
       w(1)},
      {StepKind::kSigmoid, "seg_prob", {7}, 8, {}, {}, {}},
      {StepKind::kGlobalAvgPool, "gap", {2}, 9, {}, {}, {}},
      {StepKind::kDense, "fc", {9}, 10, {}, w(32), w(4)},
      {StepKind::kRelu6, "fc_relu", {10}, 11, {}, {}, {}},
      {StepKind::kDense, "cls_logit", {11}, 12, {}, w(4), w(1)},
      {StepKind::kSigmoid, "cls_prob", {12}, 13, {}, {}, {}},
  };
  a.outputs = {{"cls", 13}, {"seg", 8}};
  a.metadata = {{"input_size", "16"}, {"norm_mean", "0.5"}, {"norm_std", "0.25"}};
  return a;
}

TEST(NoAllocation, RuntimeRunAllocatesNothing) {
  Runtime runtime(model(), 2);
  const std::vector<float> images(2 * 256, 0.25f);
  runtime.run(images, 2);  // not the first call only: every call
  {
    const CountAllocations scope;
    runtime.run(images, 2);
    runtime.run(std::span(images).first(256), 1);
  }
  EXPECT_EQ(allocations, 0);
  // The counter works: a vector allocates.
  {
    const CountAllocations scope;
    std::vector<int> v(3);
    EXPECT_EQ(v.size(), 3u);
  }
  EXPECT_GT(allocations, 0);
}

TEST(NoAllocation, RuntimeRunOnThreeThreadsAllocatesNothingOnAnyThread) {
  Runtime runtime(model(), 2, 3);
  const std::vector<float> images(2 * 256, 0.25f);
  runtime.run(images, 2);
  {
    const CountAllThreads scope;
    for (int i = 0; i < 5; ++i) {
      runtime.run(images, 2);
      runtime.run(std::span(images).first(256), 1);
    }
  }
  EXPECT_EQ(all_allocations.load(), 0);
  // The counter sees other threads' allocations.
  {
    const CountAllThreads scope;
    std::thread([] { std::vector<int> v(3); }).join();
  }
  EXPECT_GT(all_allocations.load(), 0);
}

TEST(NoAllocation, CInterfacePredictAllocatesNothing) {
  const auto path = std::filesystem::temp_directory_path() / "emtm_no_allocation.emtm";
  write_artifact(model(), path);
  char error[256] = "";
  emt_model* m = emt_model_load(path.c_str(), 2, error, sizeof error);
  std::filesystem::remove(path);
  ASSERT_NE(m, nullptr) << error;
  std::vector<uint8_t> pixels(40 * 30, 100), mask(40 * 30);
  float probability = 0;
  {
    const CountAllocations scope;
    EXPECT_EQ(emt_model_predict(m, pixels.data(), 40, 30, 40, &probability, mask.data(), error,
                                sizeof error),
              0)
        << error;
  }
  EXPECT_EQ(allocations, 0);
  emt_model_free(m);
}

}  // namespace
