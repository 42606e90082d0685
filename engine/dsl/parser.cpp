// File-level reading: includes (with cycle detection), block definitions and settings sections.
#include "engine/dsl/parser.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "engine/dsl/blocks.h"
#include "engine/dsl/toml_depth.h"
#include "engine/dsl/toml_util.h"
#include "engine/io/atomic_file.h"

namespace emt {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kTopLevelKeys = {"include", "graph", "block",  "objective", "data",
                                                "train",   "eval",  "output", "augment"};

// Why path cannot be read as a graph file ("" when it can): a directory or a FIFO (which would
// block the read) is named as such rather than "not found".
std::string not_a_graph_file(const fs::path& path) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (status.type() == fs::file_type::regular) return "";
  if (status.type() == fs::file_type::not_found) return "not found";
  if (status.type() == fs::file_type::directory) return "is a directory";
  if (ec) return "cannot be read: " + ec.message();
  return "is not a regular file";
}

class FileLoader {
 public:
  explicit FileLoader(Config& config) : config_(config) {}

  const BlockLibrary& blocks() const { return blocks_; }
  const std::vector<std::string>& files() const { return files_; }

  // The main text; included files contribute blocks and settings.
  toml::value load_main(const std::string& text, const std::string& name) {
    // A name that is no path (an ONNX model's "<model> (imported)") is its own key.
    std::error_code ec;
    fs::path identity = fs::weakly_canonical(name, ec);
    if (ec) identity = name;
    loaded_.insert(identity);
    return load_text(text, name, identity, nullptr);
  }

 private:
  void load_include(const fs::path& path, const toml::value& include_site) {
    std::error_code ec;  // a symlink loop: reported below, by the file check
    fs::path canonical = fs::weakly_canonical(path, ec);
    if (ec) canonical = fs::absolute(path);
    if (std::find(stack_.begin(), stack_.end(), canonical) != stack_.end()) {
      std::string chain;
      for (const fs::path& p : stack_) chain += p.filename().string() + " -> ";
      fail_at(include_site, "include cycle: " + chain + canonical.filename().string());
    }
    // A file included twice (a diamond: both heads and backbone include layers.toml) is read once.
    if (!loaded_.insert(canonical).second) return;
    if (const std::string why = not_a_graph_file(canonical); !why.empty())
      fail_at(include_site, "included graph file '" + path.string() + "' " + why);
    load_text(read_file(path), path.string(), canonical, &include_site);
  }

  // `identity` tells texts apart for include cycles (a file's canonical path).
  toml::value load_text(const std::string& text, const std::string& name, const fs::path& identity,
                        const toml::value* include_site) {
    check_toml_nesting(text, name);
    toml::value root;
    try {
      std::istringstream in(text);
      root = toml::parse(in, name);
    } catch (const toml::syntax_error& e) {
      const toml::source_location& l = e.location();
      throw GraphError({name, static_cast<int>(l.line()), static_cast<int>(l.column())},
                       std::string("not valid TOML\n") + e.what());
    }
    files_.push_back(name);
    stack_.push_back(identity);
    const bool is_main = include_site == nullptr;

    // Includes first, so that this file's settings override those it includes.
    if (root.contains("include")) {
      const toml::value& includes = expect_array(root.at("include"), "include");
      for (const toml::value& inc : includes.as_array())
        load_include(fs::path(name).parent_path() / expect_string(inc, "an include"), inc);
    }
    for (const auto& [key, value] : entries_in_order(root)) {
      if (key == "include") continue;
      if (key == "block") {
        read_blocks(*value);
      } else if (key == "graph") {
        if (!is_main) fail_at(*value, "[graph] belongs in the main graph file, not in an include");
      } else if (is_config_section(key)) {
        read_settings(key, *value);
      } else {
        fail_at(*value, "unknown section '" + key +
                            "' (expected one of: " + join_names(kTopLevelKeys) + ")");
      }
    }
    stack_.pop_back();
    return root;
  }

  void read_blocks(const toml::value& section) {
    for (const auto& [name, def] : entries_in_order(expect_table(section, "[block]"))) {
      expect_table(*def, "block '" + name + "'");
      if (auto it = blocks_.find(name); it != blocks_.end())
        fail_at(*def, "block '" + name + "' is already defined at " + it->second.loc.str());
      BlockDef block{name, {}, {}, loc_of(*def), {}};
      const toml::value* defaults = nullptr;
      for (const auto& [key, value] : entries_in_order(*def)) {
        if (key == "params") {
          for (const toml::value& p : expect_array(*value, "params").as_array())
            block.params.push_back(expect_string(p, "a block parameter name"));
        } else if (key == "body") {
          block.body = expect_array(*value, "body");
        } else if (key == "defaults") {
          defaults = &expect_table(*value, "defaults");
        } else if (key != "doc") {
          fail_at(*value, "unknown key '" + key + "' in block '" + name +
                              "' (expected params, defaults, body, doc)");
        }
      }
      if (!block.body.is_array() || block.body.as_array().empty())
        fail_at(*def, "block '" + name + "' needs a non-empty body = [ ... ]");
      if (defaults) {
        for (const auto& [param, value] : entries_in_order(*defaults)) {
          if (std::find(block.params.begin(), block.params.end(), param) == block.params.end())
            fail_at(*value, "default for '" + param + "', which is not a parameter of block '" +
                                name + "' (parameters: " + join_names(block.params) + ")");
          if (value->is_table() || value->is_array())
            fail_at(*value, "the default of parameter '" + param + "' must be a single value");
          block.defaults.emplace(param, *value);
        }
      }
      blocks_.emplace(name, std::move(block));
    }
  }

  void read_settings(const std::string& section, const toml::value& table) {
    for (const auto& [key, value] : entries_in_order(expect_table(table, "[" + section + "]"))) {
      if (section == "objective" && key == "terms") continue;
      if (value->is_table() || value->is_array())
        fail_at(*value, "setting '" + section + "." + key + "' must be a single value");
      try {
        config_.set(section + "." + key, scalar_value(*value), loc_of(*value));
      } catch (const GraphError& e) {
        // Re-thrown with the source line and caret, which Config cannot see.
        std::string msg = e.what();
        msg = msg.substr(msg.find("error: ") + 7);
        fail_at(*value, msg);
      }
    }
  }

  Config& config_;
  BlockLibrary blocks_;
  std::vector<fs::path> stack_;
  std::set<fs::path> loaded_;
  std::vector<std::string> files_;
};

}  // namespace

GraphFile parse_graph_text(const std::string& text, const std::string& name,
                           const std::vector<std::string>& overrides) {
  GraphFile result;
  FileLoader loader(result.config);
  const toml::value root = loader.load_main(text, name);
  for (const std::string& assignment : overrides) result.config.set_from_assignment(assignment);
  if (!root.contains("graph"))
    throw GraphError({name, 0, 0}, "no [graph] section: nothing to build");
  const toml::value* objective = root.contains("objective") ? &root.at("objective") : nullptr;
  result.graph = expand_graph(root.at("graph"), objective, loader.blocks(), result.config);
  result.graph.files = loader.files();
  return result;
}

GraphFile parse_graph_file(const fs::path& path, const std::vector<std::string>& overrides) {
  if (const std::string why = not_a_graph_file(path); !why.empty())
    throw GraphError({path.string(), 0, 0}, "graph file '" + path.string() + "' " + why);
  return parse_graph_text(read_file(path), path.string(), overrides);
}

}  // namespace emt
