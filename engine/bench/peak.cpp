#include "engine/bench/peak.h"

#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <chrono>

namespace emt {
namespace {

constexpr int kChains = 16;  // enough independent accumulators to cover FMA latency x ports
constexpr long kIterations = 20'000'000;

typedef float Vec16 __attribute__((vector_size(64)));
typedef float Vec8 __attribute__((vector_size(32)));
typedef float Vec4 __attribute__((vector_size(16)));

// Each target gets its own instantiation so the compiler emits that ISA's FMA; the result is
// returned so the loop cannot be removed.
// The chains live in registers only when the inner loop is fully unrolled.
#define EMT_PEAK_KERNEL(name, Vec, isa)                                                    \
  __attribute__((target(isa), optimize("fp-contract=fast"))) float name(long iterations) { \
    Vec acc[kChains];                                                                      \
    const Vec a = Vec{} + 0.999999f;                                                       \
    const Vec b = Vec{} + 1e-7f;                                                           \
    for (int c = 0; c < kChains; ++c) acc[c] = Vec{} + float(c);                           \
    for (long i = 0; i < iterations; ++i) {                                                \
      _Pragma("GCC unroll 16") for (int c = 0; c < kChains; ++c) acc[c] = acc[c] * a + b;  \
    }                                                                                      \
    float sum = 0;                                                                         \
    for (int c = 0; c < kChains; ++c) sum += acc[c][0];                                    \
    return sum;                                                                            \
  }

EMT_PEAK_KERNEL(fma_avx512, Vec16, "avx512f")
EMT_PEAK_KERNEL(fma_avx2, Vec8, "avx2,fma")
EMT_PEAK_KERNEL(fma_sse, Vec4, "sse2")

struct Kernel {
  float (*run)(long);
  int lanes;
};

Kernel widest_kernel() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return {fma_avx512, 16};
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return {fma_avx2, 8};
  return {fma_sse, 4};
}

}  // namespace

double measure_peak_gflops(int threads) {
  const Kernel kernel = widest_kernel();
  volatile float sink = 0;
  tbb::task_arena arena(threads);
  const auto start = std::chrono::steady_clock::now();
  arena.execute(
      [&] { tbb::parallel_for(0, threads, [&](int) { sink = sink + kernel.run(kIterations); }); });
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double flops = 2.0 * kChains * kernel.lanes * double(kIterations) * threads;
  return flops / seconds / 1e9;
}

}  // namespace emt
