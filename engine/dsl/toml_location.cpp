// loc_of (engine/dsl/toml_util.h) in time independent of the file's size. toml11's own
// value.location() counts the newlines from the start of the file on every call, which made
// reading a graph quadratic in its length (a 20,000-node file took 48 s); this answers from a
// line index built once per parsed file instead.
#include <algorithm>
#include <array>
#include <memory>
#include <vector>

#include "engine/dsl/toml_util.h"

namespace emt {
namespace {

using Source = std::vector<char>;

// Offsets at which each line of one parsed file starts; weak, so that a file freed and another
// allocated at the same address is never mistaken for it.
struct LineIndex {
  std::weak_ptr<const Source> source;
  std::vector<size_t> line_starts;
};

std::vector<size_t> line_starts_of(const Source& text) {
  std::vector<size_t> starts{0};
  for (size_t i = 0; i < text.size(); ++i)
    if (text[i] == '\n') starts.push_back(i + 1);
  return starts;
}

// Graphs read a handful of files (the main file and its includes); a small round-robin cache
// per thread keeps them all without locking.
const LineIndex& index_for(const std::shared_ptr<const Source>& source) {
  thread_local std::array<LineIndex, 8> cache;
  thread_local size_t next = 0;
  for (const LineIndex& entry : cache)
    if (entry.source.lock() == source) return entry;
  LineIndex& slot = cache[next++ % cache.size()];
  slot = {source, line_starts_of(*source)};
  return slot;
}

}  // namespace

SourceLoc loc_of(const toml::value& v) {
  const auto* region = dynamic_cast<const toml::detail::region*>(toml::detail::get_region(v));
  if (!region || !region->source()) {
    const toml::source_location l = v.location();
    return {l.file_name(), static_cast<int>(l.line()), static_cast<int>(l.column())};
  }
  const Source& text = *region->source();
  const size_t offset = static_cast<size_t>(region->first() - text.cbegin());
  const std::vector<size_t>& starts = index_for(region->source()).line_starts;
  const auto line = std::upper_bound(starts.begin(), starts.end(), offset) - starts.begin();
  const size_t column = offset - starts[static_cast<size_t>(line - 1)] + 1;
  return {region->name(), static_cast<int>(line), static_cast<int>(column)};
}

}  // namespace emt
