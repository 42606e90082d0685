// Where something was written: every diagnostic about a graph file points back here.
#pragma once

#include <stdexcept>
#include <string>

namespace emt {

struct SourceLoc {
  std::string file;
  int line = 0;
  int column = 0;

  // "graphs/emtnet.toml:12:5", or "<command line>" style names for values not from a file.
  std::string str() const;
};

// A user error in a graph file or in command-line settings; what() is the full one-line message
// "file:line:col: error: ...", optionally followed by the offending source line and a caret.
class GraphError : public std::runtime_error {
 public:
  GraphError(const SourceLoc& loc, const std::string& message, const std::string& source_line = {});
  const SourceLoc& loc() const { return loc_; }

 private:
  SourceLoc loc_;
};

}  // namespace emt
