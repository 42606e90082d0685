#include "engine/ir/graph.h"

#include <stdexcept>

namespace emt {

// Each hop goes one block deeper, so a chain longer than the alias table is a broken graph, not
// a long one.
std::string resolve_alias(const Graph& g, std::string name) {
  for (size_t hops = 0; hops <= g.aliases.size(); ++hops) {
    auto it = g.aliases.find(name);
    if (it == g.aliases.end()) return name;
    name = it->second;
  }
  throw std::logic_error("graph '" + g.name + "': block aliases form a cycle through '" + name +
                         "'");
}

}  // namespace emt
