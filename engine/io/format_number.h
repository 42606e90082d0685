// printf-style text of one number, for messages and tables.
#pragma once

#include <string>

namespace emt {

// format_number("%.9g", 0.1) = "0.100000001"; format is one printf conversion of a double.
std::string format_number(const char* format, double value);

}  // namespace emt
