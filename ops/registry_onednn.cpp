#include "ops/registry_onednn.h"

#include <omp.h>

#include "ops/core/onednn_context.h"

#define EMT_ONEDNN_VARIANT(name)            \
  namespace emt {                           \
  const OpVariant& name##_onednn_variant(); \
  }
#include "ops/variants_onednn.inc"
#undef EMT_ONEDNN_VARIANT

namespace emt {

const std::vector<const OpVariant*>& onednn_variants() {
  static const std::vector<const OpVariant*> variants = {
#define EMT_ONEDNN_VARIANT(name) &name##_onednn_variant(),
#include "ops/variants_onednn.inc"
#undef EMT_ONEDNN_VARIANT
  };
  return variants;
}

const OpVariant* find_onednn_variant(const std::string& op) {
  for (const OpVariant* v : onednn_variants())
    if (v->op == op) return v;
  return nullptr;
}

std::string onednn_bf16_unsupported_reason() { return onednn::bf16_unsupported_reason(); }

void set_onednn_threads(int threads) { omp_set_num_threads(threads); }

}  // namespace emt
