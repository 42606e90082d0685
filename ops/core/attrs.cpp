#include "ops/core/attrs.h"

#include <charconv>

#include "ops/core/op_error.h"

namespace emt {

const char* attr_type_name(AttrType type) {
  switch (type) {
    case AttrType::kInt:
      return "integer";
    case AttrType::kFloat:
      return "float";
    case AttrType::kBool:
      return "boolean";
    case AttrType::kString:
      return "string";
  }
  return "?";
}

const AttrValue& Attrs::at(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) throw OpError("attribute '" + name + "' is not set");
  return it->second;
}

int64_t Attrs::get_int(const std::string& name) const {
  return std::get<int64_t>(at(name));
}

double Attrs::get_float(const std::string& name) const {
  const AttrValue& v = at(name);
  if (const auto* i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
  return std::get<double>(v);
}

bool Attrs::get_bool(const std::string& name) const {
  return std::get<bool>(at(name));
}

const std::string& Attrs::get_string(const std::string& name) const {
  return std::get<std::string>(at(name));
}

std::string attr_value_str(const AttrValue& value) {
  struct Visitor {
    std::string operator()(int64_t v) const { return std::to_string(v); }
    // Shortest text that reads back to the same double, always with '.' or 'e' so that TOML
    // reads it back as a float.
    std::string operator()(double v) const {
      char buf[32];
      auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
      std::string s(buf, end);
      if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
      return s;
    }
    std::string operator()(bool v) const { return v ? "true" : "false"; }
    std::string operator()(const std::string& v) const { return "\"" + v + "\""; }
  };
  return std::visit(Visitor{}, value);
}

}  // namespace emt
