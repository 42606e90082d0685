#include "engine/dsl/toml_util.h"

#include <algorithm>
#include <tuple>

namespace emt {

void fail_at(const toml::value& v, const std::string& message) {
  throw GraphError(loc_of(v), message, v.location().line_str());
}

const char* toml_type_name(const toml::value& v) {
  switch (v.type()) {
    case toml::value_t::boolean:
      return "boolean";
    case toml::value_t::integer:
      return "integer";
    case toml::value_t::floating:
      return "float";
    case toml::value_t::string:
      return "string";
    case toml::value_t::array:
      return "array";
    case toml::value_t::table:
      return "table";
    default:
      return "date/time";
  }
}

std::vector<std::pair<std::string, const toml::value*>> entries_in_order(const toml::value& table) {
  std::vector<std::pair<std::string, const toml::value*>> entries;
  std::vector<std::tuple<int, int, std::string, const toml::value*>> located;
  for (const auto& [key, value] : table.as_table()) {
    const SourceLoc loc = loc_of(value);
    located.emplace_back(loc.line, loc.column, key, &value);
  }
  std::sort(located.begin(), located.end());
  for (auto& [line, column, key, value] : located) entries.emplace_back(std::move(key), value);
  return entries;
}

const toml::value& expect_table(const toml::value& v, const std::string& what) {
  if (!v.is_table()) fail_at(v, what + " must be a table, got " + toml_type_name(v));
  return v;
}

const toml::value& expect_array(const toml::value& v, const std::string& what) {
  if (!v.is_array()) fail_at(v, what + " must be an array, got " + toml_type_name(v));
  return v;
}

std::string expect_string(const toml::value& v, const std::string& what) {
  if (!v.is_string()) fail_at(v, what + " must be a string, got " + toml_type_name(v));
  return v.as_string().str;
}

AttrValue scalar_value(const toml::value& v) {
  switch (v.type()) {
    case toml::value_t::boolean:
      return AttrValue{v.as_boolean()};
    case toml::value_t::integer:
      return AttrValue{static_cast<int64_t>(v.as_integer())};
    case toml::value_t::floating:
      return AttrValue{static_cast<double>(v.as_floating())};
    case toml::value_t::string:
      return AttrValue{v.as_string().str};
    default:
      fail_at(v, std::string("expected a number, boolean or string, got ") + toml_type_name(v));
  }
}

std::string join_names(const std::vector<std::string>& names) {
  std::string s;
  for (const std::string& n : names) s += (s.empty() ? "" : ", ") + n;
  return s.empty() ? "none" : s;
}

}  // namespace emt
