#include "engine/dsl/toml_depth.h"

#include "engine/ir/source_loc.h"

namespace emt {
namespace {

// Walks the text, keeping the line count, and skips what TOML does not read as structure.
class NestingScanner {
 public:
  NestingScanner(std::string_view text, const std::string& name, int max_depth)
      : text_(text), name_(name), max_depth_(max_depth) {}

  void run() {
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == '#') {
        skip_comment();
      } else if (c == '"' || c == '\'') {
        skip_string(c);
      } else if (c == '[' || c == '{') {
        if (++depth_ > max_depth_) refuse();
        key_dots_ = 0;
        advance();
      } else if (c == ']' || c == '}') {
        if (depth_ > 0) --depth_;  // an unbalanced closer is toml11's to report
        key_dots_ = 0;
        advance();
      } else if (c == '.') {
        // Each part of a dotted key (a.b.c = 1, [a.b.c]) is a table level too.
        if (++key_dots_ + 1 > max_depth_) refuse();  // parts = dots + 1
        advance();
      } else {
        if (c == '=' || c == ',' || c == '\n') key_dots_ = 0;
        advance();
      }
    }
  }

 private:
  [[noreturn]] void refuse() const {
    throw GraphError({name_, line_, column()},
                     "TOML nesting deeper than " + std::to_string(max_depth_));
  }

  void advance() {
    if (text_[pos_] == '\n') {
      ++line_;
      line_start_ = pos_ + 1;
    }
    ++pos_;
  }

  int column() const { return static_cast<int>(pos_ - line_start_) + 1; }

  bool at_triple(char quote) const {
    return pos_ + 2 < text_.size() && text_[pos_] == quote && text_[pos_ + 1] == quote &&
           text_[pos_ + 2] == quote;
  }

  void skip_comment() {
    while (pos_ < text_.size() && text_[pos_] != '\n') advance();
  }

  // "basic" strings know backslash escapes, 'literal' ones do not; a one-line string ends at
  // the end of its line even when unterminated, a """multi-line""" one at its closing triple,
  // which may be preceded by up to two quotes of the string's own.
  void skip_string(char quote) {
    const bool multi_line = at_triple(quote);
    const bool escapes = quote == '"';
    for (int i = 0; i < (multi_line ? 3 : 1); ++i) advance();
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (escapes && c == '\\') {
        advance();
        if (pos_ < text_.size()) advance();
      } else if (!multi_line && (c == quote || c == '\n')) {
        if (c == quote) advance();
        return;
      } else if (multi_line && at_triple(quote)) {
        for (int i = 0; i < 3; ++i) advance();
        for (int i = 0; i < 2 && pos_ < text_.size() && text_[pos_] == quote; ++i) advance();
        return;
      } else {
        advance();
      }
    }
  }

  std::string_view text_;
  const std::string& name_;
  const int max_depth_;
  size_t pos_ = 0, line_start_ = 0;
  int line_ = 1, depth_ = 0;
  int key_dots_ = 0;  // dots since the key began (a float in a value has one)
};

}  // namespace

void check_toml_nesting(std::string_view text, const std::string& name, int max_depth) {
  NestingScanner(text, name, max_depth).run();
}

}  // namespace emt
