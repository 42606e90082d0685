#include "mobile/artifact.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <system_error>
#include <type_traits>

#include "mobile/half.h"

namespace emt::mobile {
namespace {

namespace fs = std::filesystem;

constexpr char kMagic[8] = {'E', 'M', 'T', 'M', 'O', 'B', 'L', '\x02'};
constexpr uint32_t kMaxStringBytes = 1u << 16;

static_assert(sizeof(float) == 4 && std::numeric_limits<float>::is_iec559);

// Fixed-size little-endian fields; every platform this targets (x86-64, aarch64) is
// little-endian, so numbers are copied as they are in memory.
class Writer {
 public:
  template <typename T>
  void put(T value) {
    static_assert(std::is_arithmetic_v<T> || std::is_enum_v<T>);
    const auto* bytes = reinterpret_cast<const char*>(&value);
    out_.append(bytes, sizeof value);
  }
  void put_string(const std::string& s) {
    put(static_cast<uint32_t>(s.size()));
    out_ += s;
  }
  void put_bytes(const void* data, size_t size) {
    out_.append(static_cast<const char*>(data), size);
  }
  const std::string& bytes() const { return out_; }

 private:
  std::string out_;
};

class Reader {
 public:
  Reader(const std::string& bytes, std::string where) : bytes_(bytes), where_(std::move(where)) {}

  template <typename T>
  T get(const char* what) {
    T value;
    need(sizeof value, what);
    std::memcpy(&value, bytes_.data() + at_, sizeof value);
    at_ += sizeof value;
    return value;
  }
  std::string get_string(const char* what) {
    const auto size = get<uint32_t>(what);
    if (size > kMaxStringBytes) fail(std::string(what) + " is " + std::to_string(size) + " bytes");
    need(size, what);
    std::string s = bytes_.substr(at_, size);
    at_ += size;
    return s;
  }
  // A count of items of at least min_item_bytes each: refused when the rest of the file could
  // not hold them, so a corrupt count cannot make the reader allocate gigabytes.
  uint64_t get_count(const char* what, uint64_t min_item_bytes) {
    const auto count = get<uint64_t>(what);
    if (count > (bytes_.size() - at_) / min_item_bytes)
      fail(std::string(what) + " " + std::to_string(count) + " exceeds the file");
    return count;
  }
  void get_floats(std::vector<float>& out, uint64_t count, const char* what) {
    // Divided, not multiplied: the count is the file's and could overflow the byte size.
    if (count > (bytes_.size() - at_) / sizeof(float)) fail(std::string("truncated in ") + what);
    out.resize(count);
    if (count == 0) return;  // memcpy must not see the empty vector's null data()
    std::memcpy(out.data(), bytes_.data() + at_, count * sizeof(float));
    at_ += count * sizeof(float);
  }
  size_t at() const { return at_; }
  size_t size() const { return bytes_.size(); }
  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error(where_ + ": " + what + ", at byte " + std::to_string(at_));
  }

 private:
  void need(uint64_t size, const char* what) const {
    if (size > bytes_.size() - at_) fail(std::string("truncated in ") + what);
  }
  const std::string& bytes_;
  std::string where_;
  size_t at_ = 0;
};

void put_value(Writer& w, const ValueDesc& v) {
  w.put_string(v.name);
  w.put(v.channels);
  w.put(v.height);
  w.put(v.width);
}

ValueDesc get_value(Reader& r) {
  ValueDesc v;
  v.name = r.get_string("value name");
  v.channels = r.get<uint32_t>("value shape");
  v.height = r.get<uint32_t>("value shape");
  v.width = r.get<uint32_t>("value shape");
  return v;
}

void put_conv(Writer& w, const ConvDesc& c) {
  for (uint32_t field : {c.cin, c.h, c.w, c.cout, c.ho, c.wo, c.kernel, c.stride, c.groups,
                         c.pad_top, c.pad_left, c.pad_bottom, c.pad_right})
    w.put(field);
  w.put(c.activation);
}

ConvDesc get_conv(Reader& r) {
  ConvDesc c;
  for (uint32_t* field : {&c.cin, &c.h, &c.w, &c.cout, &c.ho, &c.wo, &c.kernel, &c.stride,
                          &c.groups, &c.pad_top, &c.pad_left, &c.pad_bottom, &c.pad_right})
    *field = r.get<uint32_t>("convolution");
  c.activation = r.get<Activation>("convolution");
  return c;
}

[[noreturn]] void invalid(const std::string& what) { throw std::invalid_argument(what); }

void check_conv(const StepDesc& s, const Artifact& a) {
  const ConvDesc& c = s.conv;
  const std::string where = "step '" + s.name + "': ";
  if (c.kernel == 0 || c.stride == 0 || c.groups == 0 || c.cin % c.groups || c.cout % c.groups)
    invalid(where + "kernel, stride and groups must be positive, groups dividing the channels");
  // A pad of a whole kernel or more would only add outputs that read nothing but padding.
  if (c.pad_top >= c.kernel || c.pad_left >= c.kernel || c.pad_bottom >= c.kernel ||
      c.pad_right >= c.kernel)
    invalid(where + "padding must be smaller than the kernel");
  // In 64 bits, so that no sum of fields read from a file can wrap around.
  const uint64_t padded_h = uint64_t{c.h} + c.pad_top + c.pad_bottom,
                 padded_w = uint64_t{c.w} + c.pad_left + c.pad_right;
  if (padded_h < c.kernel || padded_w < c.kernel || c.ho != (padded_h - c.kernel) / c.stride + 1 ||
      c.wo != (padded_w - c.kernel) / c.stride + 1)
    invalid(where + "output size does not follow from the input size, kernel, stride and padding");
  if (static_cast<uint32_t>(c.activation) > static_cast<uint32_t>(Activation::kRelu6))
    invalid(where + "unknown activation " + std::to_string(static_cast<uint32_t>(c.activation)));
  const bool transposed = s.kind == StepKind::kConvTranspose2d;
  const ValueDesc& in = a.values[s.inputs[0]];
  const ValueDesc& out = a.values[s.output];
  const auto shape = [](uint32_t ch, uint32_t h, uint32_t w) {
    return std::to_string(ch) + "x" + std::to_string(h) + "x" + std::to_string(w);
  };
  const std::string x = shape(c.cin, c.h, c.w), y = shape(c.cout, c.ho, c.wo);
  const std::string want_in = transposed ? y : x, want_out = transposed ? x : y;
  if (shape(in.channels, in.height, in.width) != want_in ||
      shape(out.channels, out.height, out.width) != want_out)
    invalid(where + "values '" + in.name + "' and '" + out.name + "' are not " + want_in + " -> " +
            want_out);
  const uint64_t weight_count = uint64_t{c.cout} * (c.cin / c.groups) * c.kernel * c.kernel;
  if (s.weight.count != weight_count)
    invalid(where + "weight has " + std::to_string(s.weight.count) + " values, expected " +
            std::to_string(weight_count));
  const uint32_t bias_channels = transposed ? c.cin : c.cout;
  if (s.bias.count != 0 && s.bias.count != bias_channels)
    invalid(where + "bias has " + std::to_string(s.bias.count) + " values, expected " +
            std::to_string(bias_channels));
}

}  // namespace

const char* step_kind_name(StepKind kind) {
  switch (kind) {
    case StepKind::kConv2d:
      return "conv2d";
    case StepKind::kConvTranspose2d:
      return "conv_transpose2d";
    case StepKind::kAdd:
      return "add";
    case StepKind::kGlobalAvgPool:
      return "global_avg_pool";
    case StepKind::kDense:
      return "dense";
    case StepKind::kRelu:
      return "relu";
    case StepKind::kRelu6:
      return "relu6";
    case StepKind::kSigmoid:
      return "sigmoid";
  }
  return "unknown";
}

void validate(const Artifact& a) {
  const auto value_count = static_cast<uint32_t>(a.values.size());
  if (a.image >= value_count) invalid("the image value " + std::to_string(a.image) + " is unknown");
  for (const auto& [name, v] : a.outputs)
    if (v >= value_count) invalid("output '" + name + "' names an unknown value");
  // Every value of an image fits a 32-bit index (the kernels' loops) with room to spare.
  constexpr uint64_t kMaxValueFloats = uint64_t{1} << 30;
  for (const ValueDesc& v : a.values) {
    const uint64_t plane = uint64_t{v.height} * v.width;  // < 2^64: two 32-bit factors
    if (v.channels == 0 || plane == 0 || plane > kMaxValueFloats ||
        v.channels > kMaxValueFloats / plane)
      invalid("value '" + v.name + "' has an empty or oversized shape");
  }
  std::vector<bool> produced(a.values.size(), false);
  produced[a.image] = true;
  for (const StepDesc& s : a.steps) {
    const std::string where = "step '" + s.name + "' (" + step_kind_name(s.kind) + "): ";
    if (static_cast<uint32_t>(s.kind) > static_cast<uint32_t>(StepKind::kSigmoid))
      invalid(where + "unknown kind " + std::to_string(static_cast<uint32_t>(s.kind)));
    const size_t inputs = s.kind == StepKind::kAdd ? 2 : 1;
    if (s.inputs.size() != inputs)
      invalid(where + "takes " + std::to_string(inputs) + " inputs, has " +
              std::to_string(s.inputs.size()));
    for (uint32_t v : s.inputs)
      if (v >= value_count || !produced[v]) invalid(where + "reads a value no earlier step wrote");
    if (s.output >= value_count || produced[s.output])
      invalid(where + "writes an unknown value or one already written");
    produced[s.output] = true;
    for (const WeightRef& w : {s.weight, s.bias})
      if (w.offset > a.weights.size() || w.count > a.weights.size() - w.offset)
        invalid(where + "weight slice lies outside the weights");
    const ValueDesc& in = a.values[s.inputs[0]];
    const ValueDesc& out = a.values[s.output];
    switch (s.kind) {
      case StepKind::kConv2d:
      case StepKind::kConvTranspose2d:
        check_conv(s, a);
        break;
      case StepKind::kDense:
        if (in.height != 1 || in.width != 1 || out.height != 1 || out.width != 1 ||
            s.weight.count != uint64_t{in.channels} * out.channels ||
            (s.bias.count != 0 && s.bias.count != out.channels))
          invalid(where + "needs [K,1,1] -> [out,1,1] with weight [out, K] and bias [out]");
        break;
      case StepKind::kGlobalAvgPool:
        if (out.channels != in.channels || out.height != 1 || out.width != 1)
          invalid(where + "needs [C,H,W] -> [C,1,1]");
        break;
      case StepKind::kAdd:
        if (a.values[s.inputs[1]].size() != in.size() || out.size() != in.size())
          invalid(where + "needs inputs and output of one size");
        break;
      default:
        if (out.size() != in.size()) invalid(where + "needs input and output of one size");
    }
  }
  for (const auto& [name, v] : a.outputs)
    if (!produced[v]) invalid("output '" + name + "' is never written");
  for (const LossTermDesc& t : a.objective) {
    if (t.kind != LossKind::kWeightedBce && t.kind != LossKind::kDice)
      invalid("unknown loss kind " + std::to_string(static_cast<int>(t.kind)));
    if (t.input >= value_count || !produced[t.input] || t.target >= a.targets.size())
      invalid("a loss term names an unknown value or target");
    if (a.values[t.input].size() != a.targets[t.target].size())
      invalid("loss term on '" + a.values[t.input].name + "' and target '" +
              a.targets[t.target].name + "' of different sizes");
  }
}

void write_artifact(const Artifact& a, const fs::path& path) {
  validate(a);
  Writer w;
  w.put_bytes(kMagic, sizeof kMagic);
  w.put_string(a.graph);
  w.put(static_cast<uint64_t>(a.values.size()));
  for (const ValueDesc& v : a.values) put_value(w, v);
  w.put(a.image);
  w.put(static_cast<uint64_t>(a.outputs.size()));
  for (const auto& [name, v] : a.outputs) {
    w.put_string(name);
    w.put(v);
  }
  w.put(static_cast<uint64_t>(a.targets.size()));
  for (const ValueDesc& t : a.targets) put_value(w, t);
  w.put(static_cast<uint64_t>(a.steps.size()));
  for (const StepDesc& s : a.steps) {
    w.put(s.kind);
    w.put_string(s.name);
    w.put(static_cast<uint64_t>(s.inputs.size()));
    for (uint32_t v : s.inputs) w.put(v);
    w.put(s.output);
    put_conv(w, s.conv);
    for (const WeightRef& ref : {s.weight, s.bias}) {
      w.put(ref.offset);
      w.put(ref.count);
    }
  }
  w.put(static_cast<uint64_t>(a.objective.size()));
  for (const LossTermDesc& t : a.objective) {
    w.put(t.kind);
    w.put(t.input);
    w.put(t.target);
    w.put(t.weight);
    w.put(t.pos_weight);
    w.put(t.eps);
  }
  w.put(static_cast<uint64_t>(a.metadata.size()));
  for (const auto& [key, value] : a.metadata) {
    w.put_string(key);
    w.put_string(value);
  }
  w.put(a.weight_storage);
  w.put(static_cast<uint64_t>(a.weights.size()));
  if (a.weight_storage == WeightStorage::kF16) {
    try {
      for (const float v : a.weights) w.put(to_half(v));
    } catch (const std::range_error& e) {
      throw std::runtime_error(path.string() +
                               ": cannot store the weights in float16: " + e.what());
    }
  } else {
    w.put_bytes(a.weights.data(), a.weights.size() * sizeof(float));
  }

  fs::path temp = path;
  temp += ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out.write(w.bytes().data(), static_cast<std::streamsize>(w.bytes().size()));
    out.close();
    if (!out) {
      std::error_code ignored;
      fs::remove(temp, ignored);
      throw std::runtime_error(path.string() + ": cannot write the mobile model");
    }
  }
  std::error_code ec;
  fs::rename(temp, path, ec);
  if (ec) {
    fs::remove(temp, ec);
    throw std::runtime_error(path.string() + ": cannot replace it: " + ec.message());
  }
}

Artifact read_artifact(const fs::path& path) {
  // A directory makes the stream throw a message without the path, a FIFO blocks the open.
  std::error_code ec;
  if (fs::exists(path, ec) && !fs::is_regular_file(path, ec))
    throw std::runtime_error(path.string() + ": not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path.string() + ": cannot open");
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Reader r(bytes, path.string());
  if (bytes.size() < sizeof kMagic || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
    r.fail("not an EMT-Net mobile model of this version (no EMTMOBL\\x02 magic)");
  for (size_t i = 0; i < sizeof kMagic; ++i) r.get<char>("magic");
  Artifact a;
  a.graph = r.get_string("graph name");
  const uint64_t values = r.get_count("value count", 16);
  for (uint64_t i = 0; i < values; ++i) a.values.push_back(get_value(r));
  a.image = r.get<uint32_t>("image value");
  const uint64_t outputs = r.get_count("output count", 8);
  for (uint64_t i = 0; i < outputs; ++i) {
    std::string name = r.get_string("output name");
    a.outputs[name] = r.get<uint32_t>("output value");
  }
  const uint64_t targets = r.get_count("target count", 16);
  for (uint64_t i = 0; i < targets; ++i) a.targets.push_back(get_value(r));
  const uint64_t steps = r.get_count("step count", 60);
  for (uint64_t i = 0; i < steps; ++i) {
    StepDesc s;
    s.kind = r.get<StepKind>("step kind");
    s.name = r.get_string("step name");
    const uint64_t inputs = r.get_count("step input count", 4);
    for (uint64_t k = 0; k < inputs; ++k) s.inputs.push_back(r.get<uint32_t>("step input"));
    s.output = r.get<uint32_t>("step output");
    s.conv = get_conv(r);
    for (WeightRef* ref : {&s.weight, &s.bias}) {
      ref->offset = r.get<uint64_t>("weight slice");
      ref->count = r.get<uint64_t>("weight slice");
    }
    a.steps.push_back(std::move(s));
  }
  const uint64_t terms = r.get_count("loss term count", 36);
  for (uint64_t i = 0; i < terms; ++i) {
    LossTermDesc t;
    t.kind = r.get<LossKind>("loss kind");
    t.input = r.get<uint32_t>("loss input");
    t.target = r.get<uint32_t>("loss target");
    t.weight = r.get<double>("loss weight");
    t.pos_weight = r.get<double>("loss pos_weight");
    t.eps = r.get<double>("loss eps");
    a.objective.push_back(t);
  }
  const uint64_t metadata = r.get_count("metadata count", 8);
  for (uint64_t i = 0; i < metadata; ++i) {
    std::string key = r.get_string("metadata key");
    a.metadata[key] = r.get_string("metadata value");
  }
  a.weight_storage = r.get<WeightStorage>("weight storage");
  if (a.weight_storage == WeightStorage::kF16) {
    const uint64_t weights = r.get_count("weight count", sizeof(uint16_t));
    a.weights.resize(weights);
    for (float& v : a.weights) v = from_half(r.get<uint16_t>("weights"));
  } else if (a.weight_storage == WeightStorage::kF32) {
    const uint64_t weights = r.get_count("weight count", sizeof(float));
    r.get_floats(a.weights, weights, "weights");
  } else {
    r.fail("unknown weight storage " + std::to_string(static_cast<uint32_t>(a.weight_storage)));
  }
  if (r.at() != r.size()) r.fail(std::to_string(r.size() - r.at()) + " bytes after the weights");
  try {
    validate(a);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(path.string() + ": " + e.what());
  }
  return a;
}

}  // namespace emt::mobile
