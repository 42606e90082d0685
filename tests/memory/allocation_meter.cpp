#include "tests/memory/allocation_meter.h"

#include <malloc.h>

#include <atomic>
#include <cstdlib>
#include <exception>
#include <new>

namespace {

std::atomic<uint64_t> held{0};
std::atomic<uint64_t> peak{0};

void* counted_malloc(std::size_t size) {
  void* p = std::malloc(size == 0 ? 1 : size);
  if (!p) throw std::bad_alloc();
  const uint64_t now = held.fetch_add(malloc_usable_size(p)) + malloc_usable_size(p);
  uint64_t seen = peak.load(std::memory_order_relaxed);
  while (now > seen && !peak.compare_exchange_weak(seen, now)) {
  }
  return p;
}

void counted_free(void* p) {
  if (!p) return;
  held.fetch_sub(malloc_usable_size(p));
  std::free(p);
}

}  // namespace

// GCC flags free() on what this operator new returned as a mismatch; here it is the pair.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t size) { return counted_malloc(size); }
void* operator new[](std::size_t size) { return counted_malloc(size); }
void operator delete(void* p) noexcept { counted_free(p); }
void operator delete[](void* p) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_free(p); }
#pragma GCC diagnostic pop

namespace emt::test {

uint64_t peak_allocated_during(const std::function<void()>& fn) {
  const uint64_t before = held.load();
  peak.store(before);
  try {
    fn();
  } catch (const std::exception&) {
  }
  return peak.load() - before;
}

}  // namespace emt::test
