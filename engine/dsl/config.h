// Pipeline settings ([data], [train], [eval], [output], [augment], [objective] scalars): a fixed
// schema with defaults, overridden by graph files and then by `--set section.key=value`. A key
// outside the schema is an error, never a silent default.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "engine/ir/source_loc.h"
#include "ops/core/attrs.h"

namespace emt {

struct ConfigKeySpec {
  std::string key;  // "train.epochs"
  AttrValue default_value;
  std::string doc;
  // Integer settings below this are refused where they are set (an image limit of 0 would
  // refuse every image).
  int64_t min_int = std::numeric_limits<int64_t>::min();
};

const std::vector<ConfigKeySpec>& config_schema();

class Config {
 public:
  Config();  // every key at its default

  // Type-checked against the schema (and min_int); ints are accepted where floats are expected.
  void set(const std::string& key, const AttrValue& value, const SourceLoc& loc);
  // "train.epochs=3" from the command line; the value is parsed with the key's type.
  void set_from_assignment(const std::string& assignment);

  bool has(const std::string& key) const { return entries_.count(key) != 0; }
  const AttrValue& get(const std::string& key) const;
  int64_t get_int(const std::string& key) const;
  double get_float(const std::string& key) const;
  bool get_bool(const std::string& key) const;
  const std::string& get_string(const std::string& key) const;
  const SourceLoc& where(const std::string& key) const;

  // The resolved settings as TOML, each key annotated with where its value came from.
  std::string to_toml() const;

 private:
  struct Entry {
    AttrValue value;
    SourceLoc loc;
  };
  const Entry& entry(const std::string& key) const;
  std::map<std::string, Entry> entries_;
};

// Sections a graph file may hold besides [graph], [block.*] and include.
bool is_config_section(const std::string& section);

}  // namespace emt
