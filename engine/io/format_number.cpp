#include "engine/io/format_number.h"

#include <cstdio>

namespace emt {

std::string format_number(const char* format, double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, value);
  return buf;
}

}  // namespace emt
