// What every oneDNN variant shares: the one CPU engine and stream of the process, plain
// (row-major) views of emt buffers, and Port, which moves one primitive argument between an emt
// buffer and the layout the primitive chose. Only the *_onednn files include this header: the rest
// of ops/ must build without oneDNN.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <optional>
#include <string>

#include "ops/core/tensor.h"

namespace emt::onednn {

// Created on first use. oneDNN's CPU engine is stateless and its stream in-order, so one of
// each serves every op (oneDNN parallelises inside a primitive, on its OpenMP threads).
dnnl::engine& engine();
dnnl::stream& stream();

dnnl::memory::dims to_dims(const Shape& shape);

// f32, row-major, the tag of its rank: x, nc, ncw, nchw (= oihw), goihw.
dnnl::memory::desc plain_desc(const dnnl::memory::dims& dims);

dnnl::memory::data_type to_data_type(DataType dtype);

// The tensor's own layout and element type: plain (as plain_desc), or nChw16c for
// Layout::kChannelBlocked.
dnnl::memory::desc desc_of(const Shape& shape, Layout layout, DataType dtype = DataType::kF32);

// Empty when this CPU runs bf16 convolutions natively (AVX512-BF16 or AMX, as oneDNN sees it,
// ONEDNN_MAX_CPU_ISA included); otherwise why not. Without them oneDNN would emulate bf16 or
// fall back to its reference kernels: slower than f32, never what --precision bf16 is for.
std::string bf16_unsupported_reason();

// The buffer as oneDNN memory, no copy. oneDNN handles are non-const; a primitive never writes
// to the memory it receives as an input.
dnnl::memory wrap(const dnnl::memory::desc& desc, const float* data);
dnnl::memory wrap(const Tensor& tensor);

// A 64-byte aligned buffer of at least `bytes`, one per (thread, slot), kept and grown across
// calls: ops run one at a time per thread, so every op can share it instead of owning an
// activation-sized copy. Buffers of different slots never alias; a buffer may move when any op
// asks its slot for more, so fetch it again on every call.
void* scratch(int slot, size_t bytes);

// One argument of a primitive, bound to an emt buffer (plain layout `user`) on every call.
// When the primitive chose another layout, or must accumulate while oneDNN overwrites, the
// argument goes through scratch(slot) and, for another layout, a reorder created once here.
class Port {
 public:
  enum class Role {
    kRead,        // reordered in before the primitive when layouts differ
    kWrite,       // reordered out afterwards when layouts differ
    kAccumulate,  // always computed in scratch, then added to the buffer (+=) by finish()
    // As kRead, into a buffer of the port's own that keeps the reordered copy until the data
    // or its version changes: weights, reordered once rather than on every call.
    kReadCached,
  };

  Port() = default;
  Port(const dnnl::memory::desc& user, const dnnl::memory::desc& chosen, Role role, int slot);

  // The memory to hand the primitive for buffer `data`. A null data of a kAccumulate port
  // still gets scratch to write into; finish() then discards the result.
  const dnnl::memory& bind(const float* data);
  // For kReadCached: reorders only when data or version differ from the last call, or the
  // version is unknown.
  const dnnl::memory& bind(const float* data, std::optional<uint64_t> version);
  // For kAccumulate: as bind(), but when the buffer is known to hold zeros and the layouts
  // agree, the primitive writes into it directly and finish() has nothing left to add.
  const dnnl::memory& bind_gradient(float* data, bool holds_zeros);
  // After the primitive ran: moves its result into the buffer given to bind().
  void finish();

  // What the last bind() returned, for a primitive that reads the same argument in the same
  // layout (the two backward primitives both read diff_dst): saves a second reorder.
  const dnnl::memory& bound() const { return chosen_; }
  dnnl::memory::desc chosen_desc() const { return chosen_.get_desc(); }

 private:
  Role role_ = Role::kRead;
  int slot_ = 0;
  bool same_layout_ = true;
  bool direct_ = true;    // the primitive works on the emt buffer itself
  bool bound_ = false;    // bind() got a non-null buffer
  bool written_ = false;  // bind_gradient() let the primitive write the buffer itself
  dnnl::memory user_, chosen_;
  dnnl::reorder reorder_;  // only between different layouts
  // kReadCached: the reordered copy, and what it was made from.
  std::shared_ptr<std::byte[]> cache_;
  const float* cached_data_ = nullptr;
  std::optional<uint64_t> cached_version_;
};

}  // namespace emt::onednn
