// The machine's fp32 peak, measured: what "achieved GFLOP/s" is a fraction of.
#pragma once

namespace emt {

// Runs independent fused multiply-add chains on `threads` threads with the widest vectors the
// CPU has (AVX-512, else AVX2+FMA, else SSE) and returns GFLOP/s (an FMA counts as 2).
double measure_peak_gflops(int threads);

}  // namespace emt
