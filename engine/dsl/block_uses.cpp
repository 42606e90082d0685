// Bounds block expansion before any node is made: a block that uses itself would expand forever,
// and a few blocks each using the previous one twice (2^40 nodes from 40 lines) would exhaust
// memory. Counting nodes per block, memoised, costs one pass over the block definitions.
#include <algorithm>
#include <limits>
#include <map>

#include "engine/dsl/blocks.h"
#include "engine/dsl/toml_util.h"

namespace emt {
namespace {

uint64_t saturating_add(uint64_t a, uint64_t b) {
  return b > std::numeric_limits<uint64_t>::max() - a ? std::numeric_limits<uint64_t>::max()
                                                      : a + b;
}

class NodeCounter {
 public:
  NodeCounter(const BlockLibrary& blocks, const GraphLimits& limits)
      : blocks_(blocks), limits_(limits) {}

  uint64_t count_sequence(const toml::value& body) {
    uint64_t total = 0;
    for (const toml::value& entry : body.as_array()) total = saturating_add(total, count(entry));
    return total;
  }

 private:
  // Malformed entries count as one node here; the expander reports what is wrong with them.
  uint64_t count(const toml::value& entry) {
    if (!entry.is_table() || !entry.contains("use")) return 1;
    const toml::value& use = entry.at("use");
    if (!use.is_string()) return 1;
    auto it = blocks_.find(use.as_string().str);
    return it == blocks_.end() ? 1 : count_block(it->second, use);
  }

  uint64_t count_block(const BlockDef& block, const toml::value& use_site) {
    if (auto done = counts_.find(block.name); done != counts_.end()) return done->second;
    if (auto at = std::find(stack_.begin(), stack_.end(), block.name); at != stack_.end())
      fail_at(use_site, "block '" + block.name + "' uses itself: " + chain_from(at, block.name));
    if (static_cast<int64_t>(stack_.size()) >= limits_.max_block_depth)
      fail_at(use_site, "blocks nest more than " + std::to_string(limits_.max_block_depth) +
                            " deep: " + chain_from(stack_.begin(), block.name) +
                            " (limit limits.max_block_depth; raise it with --set)");
    stack_.push_back(block.name);
    const uint64_t n = count_sequence(block.body);
    stack_.pop_back();
    counts_.emplace(block.name, n);
    return n;
  }

  std::string chain_from(std::vector<std::string>::const_iterator first, const std::string& last) {
    std::string chain;
    for (auto it = first; it != stack_.cend(); ++it) chain += *it + " -> ";
    return chain + last;
  }

  const BlockLibrary& blocks_;
  const GraphLimits& limits_;
  std::vector<std::string> stack_;  // the blocks being counted, outermost first
  std::map<std::string, uint64_t> counts_;
};

}  // namespace

void check_block_uses(const toml::value& nodes, const BlockLibrary& blocks,
                      const GraphLimits& limits) {
  const uint64_t total = NodeCounter(blocks, limits).count_sequence(nodes);
  if (total > static_cast<uint64_t>(limits.max_graph_nodes))
    fail_at(nodes, "the graph expands to " +
                       (total == std::numeric_limits<uint64_t>::max() ? std::string("over 2^64")
                                                                      : std::to_string(total)) +
                       " nodes, more than limits.max_graph_nodes = " +
                       std::to_string(limits.max_graph_nodes) + " (raise it with --set)");
}

}  // namespace emt
