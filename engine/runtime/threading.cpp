#include "engine/runtime/threading.h"

#include <tbb/blocked_range.h>
#include <tbb/global_control.h>
#include <tbb/info.h>
#include <tbb/parallel_for.h>

#include <memory>

#include "ops/core/parallel.h"
#include "ops/registry_onednn.h"

namespace emt {
namespace {

std::unique_ptr<tbb::global_control> g_thread_limit;
int g_threads = 1;

void tbb_parallel_for(int64_t count, const RangeBody& body) {
  if (count <= 0) return;
  if (count == 1 || g_threads == 1) {
    body(0, count);
    return;
  }
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, count),
                    [&](const tbb::blocked_range<int64_t>& r) { body(r.begin(), r.end()); });
}

}  // namespace

void init_threading(int threads) {
  g_threads = threads > 0 ? threads : tbb::info::default_concurrency();
  g_thread_limit = std::make_unique<tbb::global_control>(
      tbb::global_control::max_allowed_parallelism, static_cast<size_t>(g_threads));
  set_parallel_for(tbb_parallel_for);
  set_onednn_threads(g_threads);
}

int thread_count() { return g_threads; }

}  // namespace emt
