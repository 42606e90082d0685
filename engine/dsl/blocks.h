// Internal to the DSL: named, parameterised node sequences and their expansion into the IR.
#pragma once

#include <map>
#include <string>
#include <toml.hpp>
#include <vector>

#include "engine/dsl/config.h"
#include "engine/ir/graph.h"

namespace emt {

struct BlockDef {
  std::string name;
  std::vector<std::string> params;
  toml::value body;  // array of node tables
  SourceLoc loc;
  // Values for parameters a use may leave out (`defaults = { act = "relu" }`), resolved where
  // the block is used, against the settings only.
  std::map<std::string, toml::value> defaults;
};

using BlockLibrary = std::map<std::string, BlockDef>;

// What a graph may expand to ([limits] settings, which only the command line can raise).
struct GraphLimits {
  int64_t max_graph_nodes = 0;
  int64_t max_block_depth = 0;
};

// Refuses, with file:line, a block that uses itself directly or through others, blocks nested
// deeper than max_block_depth, and a graph whose expansion would exceed max_graph_nodes, all
// before a single node is expanded.
void check_block_uses(const toml::value& nodes, const BlockLibrary& blocks,
                      const GraphLimits& limits);

// Builds the IR from the main file's [graph] and [objective], expanding every block use.
Graph expand_graph(const toml::value& graph_table, const toml::value* objective_table,
                   const BlockLibrary& blocks, const Config& config);

}  // namespace emt
