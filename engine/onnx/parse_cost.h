// What parsing protobuf bytes into messages will allocate, read off the wire format before any
// message is built. Protobuf's generated messages are far larger than their smallest encodings
// (an empty NodeProto is 2 bytes of file and ~150 bytes of memory, so 200,000 of them in a 400 KB
// file took 30 MB), so a reader refuses a file whose messages would take more than
// kParseCostFactor times its size. Internal to engine/onnx.
#pragma once

#include <google/protobuf/descriptor.h>

#include <cstdint>
#include <string>

namespace emt::onnx_import {

// Memory per byte of file, plus a fixed allowance so that small models with many short names pass.
constexpr uint64_t kParseCostFactor = 16;
constexpr uint64_t kParseCostSlack = uint64_t{16} << 20;

// An upper estimate of the bytes ParseFromString(bytes) allocates for a message of `type`:
// every sub-message at its generated size, every string and unknown field with its heap
// overhead, every packed number at 8 bytes. Throws OnnxFormatError naming `source` when that
// exceeds kParseCostFactor x bytes.size() + kParseCostSlack, or when the bytes do not even walk as
// protobuf (the parse would fail anyway).
void check_parse_cost(const std::string& bytes, const google::protobuf::Descriptor& type,
                      const std::string& source);

}  // namespace emt::onnx_import
