// CSV output: fields that need it are quoted as RFC 4180 says (the manifest reader takes them
// back), so a path with a comma or a quote cannot shift a row's columns.
#pragma once

#include <string>
#include <string_view>

namespace emt {

// The field as written in a CSV row: unchanged, or in double quotes with inner quotes doubled
// when it holds a comma, a quote, a line break or leading or trailing spaces.
std::string csv_field(std::string_view field);

}  // namespace emt
