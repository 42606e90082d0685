// Reads a graph file (and its includes) into the graph IR and the pipeline settings.
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

}  // namespace emt
