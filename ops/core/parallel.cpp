#include "ops/core/parallel.h"

namespace emt {
namespace {

void serial_for(int64_t count, const RangeBody& body) {
  if (count > 0) body(0, count);
}

ParallelForFn g_parallel_for = serial_for;

}  // namespace

void parallel_for(int64_t count, const RangeBody& body) {
  g_parallel_for(count, body);
}

void set_parallel_for(ParallelForFn fn) {
  g_parallel_for = fn ? fn : serial_for;
}

}  // namespace emt
