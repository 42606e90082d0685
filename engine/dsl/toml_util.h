// Small helpers over toml11 that turn its values into located diagnostics.
#pragma once

#include <string>
#include <toml.hpp>
#include <utility>
#include <vector>

#include "engine/ir/source_loc.h"
#include "ops/core/attrs.h"

namespace emt {

SourceLoc loc_of(const toml::value& v);
[[noreturn]] void fail_at(const toml::value& v, const std::string& message);

const char* toml_type_name(const toml::value& v);

// Table entries ordered as written, so the first mistake in the file is the one reported.
std::vector<std::pair<std::string, const toml::value*>> entries_in_order(const toml::value& table);

const toml::value& expect_table(const toml::value& v, const std::string& what);
const toml::value& expect_array(const toml::value& v, const std::string& what);
std::string expect_string(const toml::value& v, const std::string& what);

// A scalar as an attribute value (no substitution); arrays and tables are an error.
AttrValue scalar_value(const toml::value& v);

// "a, b, c" for error messages listing what would have been accepted.
std::string join_names(const std::vector<std::string>& names);

}  // namespace emt
