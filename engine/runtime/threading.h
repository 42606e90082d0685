// The engine's one TBB arena: every parallel kernel of the reference backend runs inside it, so
// `--threads` bounds the whole process.
#pragma once

namespace emt {

// Installs the TBB-backed parallel_for hook used by ops/ kernels; threads <= 0 means all cores.
void init_threading(int threads);
int thread_count();

}  // namespace emt
