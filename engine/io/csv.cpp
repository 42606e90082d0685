#include "engine/io/csv.h"

namespace emt {

std::string csv_field(std::string_view field) {
  const bool padded = !field.empty() && (field.front() == ' ' || field.back() == ' ');
  if (!padded && field.find_first_of(",\"\r\n") == std::string_view::npos)
    return std::string(field);
  std::string quoted = "\"";
  for (const char c : field) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

}  // namespace emt
