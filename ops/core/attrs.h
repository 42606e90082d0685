// Op attributes: a typed schema per op and a validated name -> value map.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace emt {

enum class AttrType { kInt, kFloat, kBool, kString };

const char* attr_type_name(AttrType type);

using AttrValue = std::variant<int64_t, double, bool, std::string>;

struct AttrSpec {
  std::string name;
  AttrType type;
  // No default means the attribute is required.
  std::optional<AttrValue> default_value;
  std::string doc;
};

// Holds every attribute of a node after validation: defaults are filled, types match the schema.
class Attrs {
 public:
  void set(const std::string& name, AttrValue value) { values_[name] = std::move(value); }
  bool has(const std::string& name) const { return values_.count(name) != 0; }

  int64_t get_int(const std::string& name) const;
  double get_float(const std::string& name) const;
  bool get_bool(const std::string& name) const;
  const std::string& get_string(const std::string& name) const;

  const std::map<std::string, AttrValue>& values() const { return values_; }

 private:
  const AttrValue& at(const std::string& name) const;
  std::map<std::string, AttrValue> values_;
};

std::string attr_value_str(const AttrValue& value);

}  // namespace emt
