// The mobile runtime's worker threads: a fixed pool made once (with the Runtime) that runs one
// indexed loop at a time across its workers and the calling thread. No heap allocation per
// loop: the task is passed by reference (TaskRef), never copied into a std::function.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace emt::mobile {

// A non-owning reference to a callable void(int64_t): a pointer to it and a function that calls
// it. The callable must outlive the TaskRef (ThreadPool::run keeps it until it returns).
class TaskRef {
 public:
  template <class F>
  requires(!std::is_same_v<std::remove_cvref_t<F>, TaskRef> && std::is_invocable_v<F&, int64_t>)
      TaskRef(F& f)  // NOLINT(google-explicit-constructor): converts at run()'s call
      : object_(const_cast<void*>(static_cast<const void*>(&f))),
        call_([](void* object, int64_t i) { (*static_cast<F*>(object))(i); }) {}
  TaskRef() = default;

  void operator()(int64_t i) const { call_(object_, i); }

 private:
  void* object_ = nullptr;
  void (*call_)(void*, int64_t) = nullptr;
};

class ThreadPool {
 public:
  // threads - 1 workers (none for threads == 1): the thread calling run() is the last one.
  // Throws std::invalid_argument for threads < 1.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls task(i) once for every i in [0, count), on the workers and the calling thread, and
  // returns when every call has returned. When a call throws, the indices not yet started are
  // skipped and the first exception is rethrown here; the pool stays usable. One run() at a
  // time: calls from several threads at once, or from inside a task, are not supported.
  void run(int64_t count, TaskRef task);
  template <class F>
  requires(!std::is_same_v<std::remove_cvref_t<F>, TaskRef>) void run(int64_t count, F&& task) {
    run(count, TaskRef(task));
  }

 private:
  void work_loop();
  void drain();  // runs indices of the current loop until none is left

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable start_, done_;
  uint64_t generation_ = 0;  // loops started; a worker runs each one once
  bool stopping_ = false;
  int busy_ = 0;  // workers not yet done with the current loop
  TaskRef task_;
  int64_t count_ = 0;
  std::atomic<int64_t> next_{0};
  std::atomic<bool> failed_{false};
  std::exception_ptr error_;  // the first, under mutex_
};

}  // namespace emt::mobile
