// The mobile runtime's thread pool: every index exactly once, the work really shared, and a
// throwing task reported to run()'s caller without losing or hanging the pool.
#include "mobile/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using emt::mobile::ThreadPool;

// hits[i] = how many times task(i) ran.
std::vector<int> run_counting(ThreadPool& pool, int64_t count) {
  const auto hits = std::make_unique<std::atomic<int>[]>(static_cast<size_t>(count) + 1);
  pool.run(count, [&](int64_t i) { hits[static_cast<size_t>(i)].fetch_add(1); });
  std::vector<int> out;
  for (int64_t i = 0; i < count; ++i) out.push_back(hits[static_cast<size_t>(i)].load());
  return out;
}

TEST(MobileThreadPool, RunsEveryIndexExactlyOnce) {
  for (const int threads : {1, 2, 3, 4}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.threads(), threads);
    for (const int64_t count : {int64_t{0}, int64_t{1}, int64_t{threads - 1}, int64_t{threads},
                                int64_t{threads + 1}, int64_t{1000}}) {
      for (int repeat = 0; repeat < 3; ++repeat) {
        const std::vector<int> hits = run_counting(pool, count);
        ASSERT_EQ(hits.size(), static_cast<size_t>(count));
        for (int64_t i = 0; i < count; ++i)
          ASSERT_EQ(hits[static_cast<size_t>(i)], 1)
              << "threads " << threads << " count " << count << " index " << i;
      }
    }
  }
}

TEST(MobileThreadPool, SharesTheWorkAcrossThreads) {
  constexpr int kThreads = 3;
  ThreadPool pool(kThreads);
  // Each task waits for all kThreads tasks to have started: only possible when kThreads threads
  // run them at once. A deadline turns a serial pool into a failure instead of a hang.
  std::atomic<int> started{0};
  std::atomic<bool> all_met{true};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  std::vector<std::thread::id> ids(kThreads);
  pool.run(kThreads, [&](int64_t i) {
    ids[static_cast<size_t>(i)] = std::this_thread::get_id();
    started.fetch_add(1);
    while (started.load() < kThreads) {
      if (std::chrono::steady_clock::now() > deadline) {
        all_met = false;
        return;
      }
      std::this_thread::yield();
    }
  });
  EXPECT_TRUE(all_met);
  EXPECT_NE(ids[0], ids[1]);
  EXPECT_NE(ids[1], ids[2]);
  EXPECT_NE(ids[0], ids[2]);
}

TEST(MobileThreadPool, ATaskExceptionReachesTheCallerAndThePoolKeepsWorking) {
  for (const int threads : {1, 2, 4}) {
    ThreadPool pool(threads);
    try {
      pool.run(1000, [](int64_t i) {
        if (i == 17) throw std::runtime_error("task 17 failed");
      });
      ADD_FAILURE() << "no exception with " << threads << " threads";
    } catch (const std::runtime_error& e) {
      EXPECT_EQ(std::string(e.what()), "task 17 failed");
    }
    // Every task throwing: one of them arrives, nothing hangs.
    EXPECT_THROW(pool.run(100, [](int64_t) { throw std::logic_error("all"); }), std::logic_error);
    const std::vector<int> hits = run_counting(pool, 1000);
    for (size_t i = 0; i < hits.size(); ++i) ASSERT_EQ(hits[i], 1) << "index " << i;
  }
}

TEST(MobileThreadPool, RefusesFewerThanOneThread) {
  EXPECT_THROW(ThreadPool(0), std::invalid_argument);
  EXPECT_THROW(ThreadPool(-2), std::invalid_argument);
}

}  // namespace
