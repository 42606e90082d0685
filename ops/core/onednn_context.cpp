#include "ops/core/onednn_context.h"

#include <memory>
#include <new>
#include <vector>

#include "ops/core/parallel_elements.h"

namespace emt::onednn {
namespace {

using dnnl::memory;

struct AlignedDelete {
  void operator()(std::byte* p) const { ::operator delete[](p, std::align_val_t{64}); }
};

struct ScratchBuffer {
  std::unique_ptr<std::byte[], AlignedDelete> data;
  size_t bytes = 0;
};

}  // namespace

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

dnnl::stream& stream() {
  static dnnl::stream s(engine());
  return s;
}

memory::dims to_dims(const Shape& shape) { return memory::dims(shape.begin(), shape.end()); }

memory::desc plain_desc(const memory::dims& dims) {
  return desc_of(Shape(dims.begin(), dims.end()), Layout::kPlain);
}

memory::data_type to_data_type(DataType dtype) {
  return dtype == DataType::kBF16 ? memory::data_type::bf16 : memory::data_type::f32;
}

memory::desc desc_of(const Shape& shape, Layout layout, DataType dtype) {
  static constexpr memory::format_tag kPlainTags[] = {
      memory::format_tag::a,    memory::format_tag::ab,    memory::format_tag::abc,
      memory::format_tag::abcd, memory::format_tag::abcde, memory::format_tag::abcdef,
  };
  static_assert(kLayoutBlock == 16, "nChw16c is oneDNN's aBcd16b");
  return memory::desc(
      to_dims(shape), to_data_type(dtype),
      layout == Layout::kPlain ? kPlainTags[shape.size() - 1] : memory::format_tag::aBcd16b);
}

std::string bf16_unsupported_reason() {
  // oneDNN's ISA values are bit sets, each holding the bits of the ISAs it extends (AMX those
  // of AVX512-BF16); avx2_vnni is not ordered with them, hence a mask, not a comparison.
  const auto bf16 = static_cast<unsigned>(dnnl::cpu_isa::avx512_core_bf16);
  if ((static_cast<unsigned>(dnnl::get_effective_cpu_isa()) & bf16) == bf16) return "";
  return "bf16 needs a CPU with AVX512-BF16 or AMX (oneDNN's effective ISA here has neither; "
         "see /proc/cpuinfo for avx512_bf16 / amx_bf16, and ONEDNN_MAX_CPU_ISA)";
}

memory wrap(const memory::desc& desc, const float* data) {
  return memory(desc, engine(), const_cast<float*>(data));
}

memory wrap(const Tensor& tensor) {
  return wrap(desc_of(tensor.shape, tensor.layout, tensor.dtype), tensor.data);
}

void* scratch(int slot, size_t bytes) {
  thread_local std::vector<ScratchBuffer> buffers;
  if (buffers.size() <= static_cast<size_t>(slot)) buffers.resize(slot + 1);
  ScratchBuffer& b = buffers[slot];
  if (b.bytes < bytes) {
    b.data.reset(new (std::align_val_t{64}) std::byte[bytes]);
    b.bytes = bytes;
  }
  return b.data.get();
}

Port::Port(const memory::desc& user, const memory::desc& chosen, Role role, int slot)
    : role_(role),
      slot_(slot),
      same_layout_(user == chosen),
      direct_(same_layout_ && role != Role::kAccumulate) {
  user_ = memory(user, engine(), DNNL_MEMORY_NONE);
  if (direct_) {
    chosen_ = user_;
    return;
  }
  chosen_ = memory(chosen, engine(), DNNL_MEMORY_NONE);
  if (same_layout_) return;  // an accumulation finish() does as a loop
  if (role == Role::kReadCached) {
    const size_t bytes = chosen.get_size();
    cache_ = std::shared_ptr<std::byte[]>(new (std::align_val_t{64}) std::byte[bytes],
                                          [](std::byte* p) { AlignedDelete()(p); });
    chosen_.set_data_handle(cache_.get());
  }
  if (role == Role::kRead || role == Role::kReadCached) {
    reorder_ = dnnl::reorder(user_, chosen_);
    return;
  }
  dnnl::primitive_attr attr;
  if (role == Role::kAccumulate) {
    // A reorder with a sum post-op computes dst += src: the layout change and the accumulation
    // in one pass over the gradient.
    dnnl::post_ops ops;
    ops.append_sum(1.0f);
    attr.set_post_ops(ops);
  }
  reorder_ = dnnl::reorder(chosen_, user_, attr);
}

const memory& Port::bind_gradient(float* data, bool holds_zeros) {
  written_ = holds_zeros && data && same_layout_ && role_ == Role::kAccumulate;
  if (!written_) return bind(data);
  bound_ = true;
  user_.set_data_handle(data);
  chosen_.set_data_handle(data);
  return chosen_;
}

const memory& Port::bind(const float* data) {
  written_ = false;
  bound_ = data != nullptr;
  user_.set_data_handle(const_cast<float*>(data));
  if (direct_) return chosen_;
  chosen_.set_data_handle(scratch(slot_, chosen_.get_desc().get_size()));
  if (role_ == Role::kRead) reorder_.execute(stream(), user_, chosen_);
  return chosen_;
}

const memory& Port::bind(const float* data, std::optional<uint64_t> version) {
  if (role_ != Role::kReadCached) return bind(data);
  user_.set_data_handle(const_cast<float*>(data));
  if (direct_) return chosen_;
  if (!version || version != cached_version_ || data != cached_data_) {
    reorder_.execute(stream(), user_, chosen_);
    cached_data_ = data;
    cached_version_ = version;
  }
  return chosen_;
}

void Port::finish() {
  if (direct_ || written_ || !bound_ || role_ == Role::kRead || role_ == Role::kReadCached) return;
  if (!same_layout_) {
    reorder_.execute(stream(), chosen_, user_);
    return;
  }
  // Same layout (a bias, or a convolution run on plain layouts): oneDNN would use its generic
  // simple:any reorder, which a loop beats (measured 83 vs 131 us for 1M floats, 1 thread).
  stream().wait();
  const auto* src = static_cast<const float*>(chosen_.get_data_handle());
  auto* dst = static_cast<float*>(user_.get_data_handle());
  const auto n = static_cast<int64_t>(chosen_.get_desc().get_size() / sizeof(float));
  parallel_for_elements(n, [&](int64_t i) { dst[i] += src[i]; });
}

}  // namespace emt::onednn
