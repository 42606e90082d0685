// What a call allocates at its peak: this binary replaces the global operator new and delete
// (allocation_meter.cpp), so every container, string and protobuf message the readers build is
// counted, on every thread, as malloc_usable_size reports it.
#pragma once

#include <cstdint>
#include <functional>

namespace emt::test {

// The most bytes held through operator new at any moment during fn(), above what was held when
// it started; an exception from fn is caught (a refusal's allocations count too).
uint64_t peak_allocated_during(const std::function<void()>& fn);

}  // namespace emt::test
