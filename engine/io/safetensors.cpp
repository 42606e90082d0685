#include "engine/io/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "engine/io/atomic_file.h"
#include "ops/core/checked_size.h"

namespace emt {
namespace {

// The format stores little-endian data; on a little-endian host the bytes are the floats, so
// copying them preserves every bit (NaN payloads, -0.0, denormals). Big-endian hosts are not
// targets (x86-64, aarch64).
static_assert(std::endian::native == std::endian::little);

constexpr size_t kLengthBytes = 8;
constexpr char kMetadataKey[] = "__metadata__";

[[noreturn]] void fail(const std::filesystem::path& path, const std::string& reason) {
  throw std::runtime_error(path.string() + ": " + reason);
}

class HeaderShapeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Refuses, before nlohmann builds its tree, what no safetensors header holds: nesting below
// {"name": {"key": [numbers]}}, arrays longer than a shape, a name that is not an object. The
// tree then costs at most ~24 bytes per header byte (README, "Limits"); unchecked, JSON's
// smallest values ({} or 0 in one long array) cost up to 43. A SAX pass, not a parse callback:
// nlohmann's callback parser is quadratic in the number of entries.
class HeaderShapeCheck : public nlohmann::json_sax<nlohmann::json> {
 public:
  bool null() override { return scalar("null"); }
  bool boolean(bool) override { return scalar("boolean"); }
  bool number_integer(number_integer_t) override { return scalar("number"); }
  bool number_unsigned(number_unsigned_t) override { return scalar("number"); }
  bool number_float(number_float_t, const string_t&) override { return scalar("number"); }
  bool string(string_t&) override { return scalar("string"); }
  bool binary(binary_t&) override { return scalar("binary value"); }
  bool start_object(std::size_t) override {
    if (in_array_ || ++objects_ > 2)
      throw HeaderShapeError("nests an object below a tensor's entry");
    return true;
  }
  bool end_object() override {
    --objects_;
    return true;
  }
  bool key(string_t&) override { return true; }
  bool start_array(std::size_t) override {
    if (objects_ == 0) throw HeaderShapeError("must be a JSON object");
    if (objects_ != 2 || in_array_) throw HeaderShapeError("has an array outside a tensor's entry");
    in_array_ = true;
    array_values_ = 0;
    return true;
  }
  bool end_array() override {
    in_array_ = false;
    return true;
  }
  // The tree parse that follows reports the error in full.
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

 private:
  static constexpr int kMaxArrayValues = 16;

  bool scalar(const char* kind) {
    if (objects_ == 1 && !in_array_)
      throw HeaderShapeError(std::string("has a top-level ") + kind + ", not an object");
    if (in_array_ && ++array_values_ > kMaxArrayValues)
      throw HeaderShapeError("has an array of over " + std::to_string(kMaxArrayValues) + " values");
    return true;
  }

  int objects_ = 0;
  bool in_array_ = false;
  int array_values_ = 0;
};

std::string tensor_ref(const std::string& name) { return "tensor '" + name + "'"; }

void check_writable(const SafetensorsFile& file) {
  std::set<std::string> names;
  for (const NamedTensor& t : file.tensors) {
    if (t.name == kMetadataKey) throw std::invalid_argument("tensor name __metadata__ is reserved");
    if (!names.insert(t.name).second) {
      throw std::invalid_argument("duplicate " + tensor_ref(t.name));
    }
    if (std::any_of(t.shape.begin(), t.shape.end(), [](int64_t d) { return d < 0; }) ||
        shape_numel(t.shape) != static_cast<int64_t>(t.data.size())) {
      throw std::invalid_argument(tensor_ref(t.name) + " has shape " + shape_str(t.shape) +
                                  " but " + std::to_string(t.data.size()) + " values");
    }
  }
}

struct Entry {
  std::string name;
  Shape shape;
  uint64_t begin, end;
};

Shape parse_shape(const std::filesystem::path& path, const std::string& name,
                  const nlohmann::json& json) {
  if (!json.is_array()) fail(path, tensor_ref(name) + ": shape must be an array");
  Shape shape;
  for (const nlohmann::json& d : json) {
    if (!d.is_number_unsigned() || d.get<uint64_t>() > std::numeric_limits<int64_t>::max()) {
      fail(path, tensor_ref(name) + ": shape must hold non-negative integers, got " + json.dump());
    }
    shape.push_back(d.get<int64_t>());
  }
  return shape;
}

Entry parse_entry(const std::filesystem::path& path, const std::string& name,
                  const nlohmann::json& json, uint64_t data_size) {
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!json.contains(key)) fail(path, tensor_ref(name) + ": missing \"" + key + "\"");
  }
  const nlohmann::json& dtype = json["dtype"];
  if (!dtype.is_string()) fail(path, tensor_ref(name) + ": dtype must be a string");
  if (dtype.get<std::string>() != "F32") {
    fail(path,
         tensor_ref(name) + " has dtype " + dtype.get<std::string>() + "; only F32 is supported");
  }
  Entry entry{name, parse_shape(path, name, json["shape"]), 0, 0};
  const nlohmann::json& offsets = json["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned()) {
    fail(path, tensor_ref(name) + ": data_offsets must be [begin, end], got " + offsets.dump());
  }
  entry.begin = offsets[0].get<uint64_t>();
  entry.end = offsets[1].get<uint64_t>();
  if (entry.begin > entry.end || entry.end > data_size) {
    fail(path, tensor_ref(name) + ": data_offsets " + offsets.dump() + " out of range of the " +
                   std::to_string(data_size) + "-byte data section");
  }
  const uint64_t span = entry.end - entry.begin;
  if (span % sizeof(float) != 0 ||
      product_if_representable(entry.shape) != static_cast<int64_t>(span / sizeof(float))) {
    fail(path, tensor_ref(name) + " has shape " + shape_str(entry.shape) + " but data_offsets " +
                   offsets.dump() + " span " + std::to_string(span) +
                   " bytes (F32 takes 4 bytes per element)");
  }
  return entry;
}

std::map<std::string, std::string> parse_metadata(const std::filesystem::path& path,
                                                  const nlohmann::json& json) {
  std::map<std::string, std::string> metadata;
  for (const auto& [key, value] : json.items()) {
    if (!value.is_string()) fail(path, "__metadata__ value of \"" + key + "\" must be a string");
    metadata[key] = value.get<std::string>();
  }
  return metadata;
}

}  // namespace

const NamedTensor* SafetensorsFile::find(const std::string& name) const {
  auto it = std::find_if(tensors.begin(), tensors.end(),
                         [&](const NamedTensor& t) { return t.name == name; });
  return it == tensors.end() ? nullptr : &*it;
}

void write_safetensors(const std::filesystem::path& path, const SafetensorsFile& file) {
  check_writable(file);
  // Ordered, so the header reads like the file: metadata first, then tensors in data order.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!file.metadata.empty()) header[kMetadataKey] = file.metadata;
  uint64_t offset = 0;
  for (const NamedTensor& t : file.tensors) {
    const uint64_t end = offset + t.data.size() * sizeof(float);
    header[t.name] = {{"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {offset, end}}};
    offset = end;
  }
  std::string header_text = header.dump();
  // Pads so the data section starts 8-byte aligned, as the format recommends.
  header_text.append((kLengthBytes - header_text.size() % kLengthBytes) % kLengthBytes, ' ');

  std::string bytes(kLengthBytes, '\0');
  const uint64_t header_length = header_text.size();
  std::memcpy(bytes.data(), &header_length, kLengthBytes);
  bytes.reserve(kLengthBytes + header_text.size() + offset);
  bytes += header_text;
  for (const NamedTensor& t : file.tensors) {
    bytes.append(reinterpret_cast<const char*>(t.data.data()), t.data.size() * sizeof(float));
  }
  write_file_atomic(path, bytes);
}

SafetensorsFile read_safetensors(const std::filesystem::path& path) {
  const std::string bytes = read_file(path);
  if (bytes.size() < kLengthBytes) {
    fail(path, "file is " + std::to_string(bytes.size()) +
                   " bytes, too short for the 8-byte header length");
  }
  uint64_t header_length = 0;
  std::memcpy(&header_length, bytes.data(), kLengthBytes);
  if (header_length > bytes.size() - kLengthBytes) {
    fail(path, "header length " + std::to_string(header_length) + " exceeds the " +
                   std::to_string(bytes.size()) + "-byte file (truncated?)");
  }
  const char* header_begin = bytes.data() + kLengthBytes;
  nlohmann::json header;
  try {
    HeaderShapeCheck shape_check;
    nlohmann::json::sax_parse(header_begin, header_begin + header_length, &shape_check);
    header = nlohmann::json::parse(header_begin, header_begin + header_length);
  } catch (const nlohmann::json::parse_error& e) {
    fail(path, std::string("header is not valid JSON: ") + e.what());
  } catch (const HeaderShapeError& e) {
    fail(path, std::string("header ") + e.what());
  }
  if (!header.is_object()) fail(path, "header must be a JSON object");

  const uint64_t data_size = bytes.size() - kLengthBytes - header_length;
  SafetensorsFile file;
  std::vector<Entry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key == kMetadataKey) {
      file.metadata = parse_metadata(path, value);
    } else {
      entries.push_back(parse_entry(path, key, value, data_size));
    }
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  for (size_t i = 1; i < entries.size(); ++i) {
    if (entries[i].begin < entries[i - 1].end) {
      fail(path, "data of " + tensor_ref(entries[i - 1].name) + " and " +
                     tensor_ref(entries[i].name) + " overlap");
    }
  }
  const char* data = header_begin + header_length;
  for (Entry& e : entries) {
    NamedTensor& t = file.tensors.emplace_back();
    t.name = std::move(e.name);
    t.shape = std::move(e.shape);
    t.data.resize((e.end - e.begin) / sizeof(float));
    // copy_n, unlike memcpy, is defined for the null pointer of an empty tensor.
    std::copy_n(data + e.begin, e.end - e.begin, reinterpret_cast<char*>(t.data.data()));
  }
  return file;
}

}  // namespace emt
