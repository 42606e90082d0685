#include "engine/onnx/parse_cost.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/message.h>
#include <google/protobuf/wire_format_lite.h>

#include <climits>

#include "engine/onnx/import.h"

namespace emt::onnx_import {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::io::CodedInputStream;
using WireType = google::protobuf::internal::WireFormatLite::WireType;
using google::protobuf::internal::WireFormatLite;

// A std::string's heap block and bookkeeping beyond its characters, and the same for one
// element or unknown field of a repeated container.
constexpr uint64_t kStringOverhead = 48;
constexpr uint64_t kElementOverhead = 16;
// Protobuf's own default nesting limit: a deeper file does not parse.
constexpr int kMaxDepth = 100;

uint64_t message_size(const Descriptor& type) {
  const google::protobuf::Message* prototype =
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(&type);
  return prototype ? static_cast<uint64_t>(prototype->SpaceUsedLong()) : kStringOverhead;
}

class CostWalk {
 public:
  explicit CostWalk(const std::string& source) : source_(source) {}

  // The cost of the fields of one message of `type` up to the stream's current limit.
  uint64_t fields(CodedInputStream& in, const Descriptor* type, int depth) {
    if (depth > kMaxDepth) fail("messages nest deeper than " + std::to_string(kMaxDepth));
    uint64_t cost = 0;
    while (const uint32_t tag = in.ReadTag()) {
      const FieldDescriptor* field =
          type ? type->FindFieldByNumber(WireFormatLite::GetTagFieldNumber(tag)) : nullptr;
      cost += field_cost(in, WireFormatLite::GetTagWireType(tag), field, depth);
    }
    if (!in.ConsumedEntireMessage()) fail("a field tag is malformed");
    return cost;
  }

 private:
  uint64_t field_cost(CodedInputStream& in, WireType wire, const FieldDescriptor* field,
                      int depth) {
    uint64_t ignored = 0;
    uint32_t ignored32 = 0;
    switch (wire) {
      case WireFormatLite::WIRETYPE_VARINT:
        if (!in.ReadVarint64(&ignored)) fail("a number is truncated");
        return kElementOverhead;
      case WireFormatLite::WIRETYPE_FIXED64:
        if (!in.ReadLittleEndian64(&ignored)) fail("a number is truncated");
        return kElementOverhead;
      case WireFormatLite::WIRETYPE_FIXED32:
        if (!in.ReadLittleEndian32(&ignored32)) fail("a number is truncated");
        return kElementOverhead;
      case WireFormatLite::WIRETYPE_LENGTH_DELIMITED:
        return delimited_cost(in, field, depth);
      default:
        fail("a field has wire type " + std::to_string(static_cast<int>(wire)) +
             ", which ONNX files do not use");
    }
  }

  uint64_t delimited_cost(CodedInputStream& in, const FieldDescriptor* field, int depth) {
    uint32_t length = 0;
    if (!in.ReadVarint32(&length)) fail("a length is truncated");
    if (field && field->type() == FieldDescriptor::TYPE_MESSAGE) {
      const CodedInputStream::Limit limit = in.PushLimit(static_cast<int>(length));
      const uint64_t cost = message_size(*field->message_type()) + kElementOverhead +
                            fields(in, field->message_type(), depth + 1);
      in.PopLimit(limit);
      return cost;
    }
    if (!in.Skip(static_cast<int>(length))) fail("a field runs past the end of the file");
    // A string or bytes field, an unknown field, or packed numbers (at most one per byte, each
    // held in 8 bytes).
    const bool packed = field && field->is_packable();
    return packed ? 8 * uint64_t{length} : uint64_t{length} + kStringOverhead;
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw OnnxFormatError(source_ + ": not an ONNX model: the protobuf does not parse (" + what +
                          "; truncated or corrupt file?)");
  }

  const std::string& source_;
};

}  // namespace

void check_parse_cost(const std::string& bytes, const Descriptor& type, const std::string& source) {
  if (bytes.size() > INT_MAX)
    throw OnnxFormatError(source + ": " + std::to_string(bytes.size()) +
                          " bytes, over protobuf's 2 GB limit (keep the weights as external data "
                          "is not supported either: export a smaller model)");
  CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                      static_cast<int>(bytes.size()));
  const uint64_t cost = message_size(type) + CostWalk(source).fields(in, &type, 0);
  const uint64_t allowed = kParseCostFactor * bytes.size() + kParseCostSlack;
  if (cost > allowed)
    throw OnnxFormatError(source + ": its messages would take about " + std::to_string(cost >> 20) +
                          " MB to read, over " + std::to_string(kParseCostFactor) +
                          " times the file's " + std::to_string(bytes.size()) +
                          " bytes (many empty or tiny messages: corrupt or hostile)");
}

}  // namespace emt::onnx_import
