#include "engine/ir/source_loc.h"

namespace emt {
namespace {

std::string render(const SourceLoc& loc, const std::string& message, const std::string& line) {
  std::string text = loc.str() + ": error: " + message;
  if (!line.empty()) {
    text += "\n  " + line + "\n  ";
    if (loc.column > 0) text += std::string(static_cast<size_t>(loc.column - 1), ' ') + "^";
  }
  return text;
}

}  // namespace

std::string SourceLoc::str() const {
  if (line <= 0) return file;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

GraphError::GraphError(const SourceLoc& loc, const std::string& message,
                       const std::string& source_line)
    : std::runtime_error(render(loc, message, source_line)), loc_(loc) {}

}  // namespace emt
