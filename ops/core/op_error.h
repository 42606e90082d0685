// The one exception type the op set throws; the engine adds the graph file and line.
#pragma once

#include <stdexcept>
#include <string>

namespace emt {

class OpError : public std::runtime_error {
 public:
  explicit OpError(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace emt
