// Reads a graph file or graph text (and its includes) into the graph IR and the pipeline settings.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "engine/dsl/config.h"
#include "engine/ir/graph.h"

namespace emt {

struct GraphFile {
  Graph graph;
  Config config;
};

// `overrides` are "section.key=value" assignments applied after every file.
// Throws GraphError (file:line:col and the offending line) on any mistake in the files.
GraphFile parse_graph_file(const std::filesystem::path& path,
                           const std::vector<std::string>& overrides = {});

// The same for graph text held in memory (an imported model's graph). `name` stands for the text
// in every message ("name:line:col") and in Graph::files; its includes are read from files, found
// relative to name's directory. parse_graph_file reads the file and comes here.
GraphFile parse_graph_text(const std::string& text, const std::string& name,
                           const std::vector<std::string>& overrides = {});

}  // namespace emt
