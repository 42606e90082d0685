// A guard run over graph text before toml11 sees it: toml11 parses nested arrays and inline
// tables by recursion, so a file nested a few thousand levels deep overflows the stack.
#pragma once

#include <string>
#include <string_view>

namespace emt {

// Far above what a graph needs (its block bodies nest four or five levels), far below what
// overflows toml11's recursion.
constexpr int kMaxTomlNesting = 128;

// Throws GraphError at name:line:col of the first '[' or '{' that opens more than `max_depth`
// nested arrays / tables, or of the dot that makes a dotted key (a.b.c) longer than `max_depth`
// parts, which toml11 nests as deeply. Brackets and dots inside strings and comments do not count.
// One linear pass; any other mistake in the text is left to toml11 to report.
void check_toml_nesting(std::string_view text, const std::string& name,
                        int max_depth = kMaxTomlNesting);

}  // namespace emt
