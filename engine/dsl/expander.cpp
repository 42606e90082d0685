// Expands [graph] into IR nodes: block instances get prefixed names ("backbone.ds3.dw"),
// "${param}" and "${section.key}" are substituted, and node inputs default to the previous node.
#include <map>
#include <optional>
#include <regex>
#include <set>

#include "engine/dsl/blocks.h"
#include "engine/dsl/toml_util.h"
#include "ops/registry.h"

namespace emt {
namespace {

const char* kPrevRef = "@prev";
const char* kInputRef = "@input";

struct Scope {
  const BlockDef* block = nullptr;  // null at graph level
  const std::map<std::string, AttrValue>* args = nullptr;
};

std::string join_name(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

class Expander {
 public:
  Expander(Graph& graph, const BlockLibrary& blocks, const Config& config)
      : graph_(graph), blocks_(blocks), config_(config) {}

  // A scalar with every ${...} resolved: a whole-string reference keeps the referenced type.
  AttrValue resolve(const toml::value& v, const Scope& scope) const {
    AttrValue value = scalar_value(v);
    const auto* text = std::get_if<std::string>(&value);
    if (!text || text->find("${") == std::string::npos) return value;
    static const std::regex whole(R"(^\$\{([^}]*)\}$)");
    std::smatch m;
    if (std::regex_match(*text, m, whole)) return lookup(m[1].str(), v, scope);
    static const std::regex part(R"(\$\{([^}]*)\})");
    std::string out;
    auto begin = text->cbegin();
    for (std::sregex_iterator it(text->begin(), text->end(), part), end; it != end; ++it) {
      out.append(begin, text->cbegin() + it->position());
      const AttrValue sub = lookup((*it)[1].str(), v, scope);
      const auto* s = std::get_if<std::string>(&sub);
      out += s ? *s : attr_value_str(sub);
      begin = text->cbegin() + it->position() + it->length();
    }
    out.append(begin, text->cend());
    return AttrValue{out};
  }

  std::string resolve_string(const toml::value& v, const Scope& scope, const std::string& what) {
    expect_string(v, what);
    const AttrValue value = resolve(v, scope);
    if (const auto* s = std::get_if<std::string>(&value)) return *s;
    fail_at(v, what + " must be a string, got " + attr_value_str(value));
  }

  int64_t resolve_int(const toml::value& v, const Scope& scope, const std::string& what) {
    const AttrValue value = resolve(v, scope);
    if (const auto* i = std::get_if<int64_t>(&value)) return *i;
    fail_at(v, what + " must be an integer, got " + attr_value_str(value));
  }

  double resolve_float(const toml::value& v, const Scope& scope, const std::string& what) {
    const AttrValue value = resolve(v, scope);
    if (const auto* i = std::get_if<int64_t>(&value)) return static_cast<double>(*i);
    if (const auto* d = std::get_if<double>(&value)) return *d;
    fail_at(v, what + " must be a number, got " + attr_value_str(value));
  }

  // Expands a node list; returns the name of the last value it defines.
  std::string expand_sequence(const toml::value& body, const std::string& prefix,
                              const Scope& scope, std::optional<std::string> block_input) {
    const auto& entries = body.as_array();
    std::vector<std::string> local_names;
    for (size_t i = 0; i < entries.size(); ++i)
      local_names.push_back(local_name(entries[i], i, scope));
    const std::set<std::string> locals(local_names.begin(), local_names.end());

    std::optional<std::string> prev = block_input;
    for (size_t i = 0; i < entries.size(); ++i) {
      const toml::value& entry = entries[i];
      const std::string full = join_name(prefix, local_names[i]);
      const std::vector<std::string> inputs =
          resolve_inputs(entry, prefix, locals, scope, block_input, prev);
      if (entry.contains("op"))
        expand_op(entry, full, inputs, scope);
      else
        expand_use(entry, full, inputs, scope);
      prev = full;
    }
    return *prev;
  }

 private:
  AttrValue lookup(const std::string& name, const toml::value& v, const Scope& scope) const {
    if (scope.args)
      if (auto it = scope.args->find(name); it != scope.args->end()) return it->second;
    if (config_.has(name)) return config_.get(name);
    if (scope.block)
      fail_at(v, "unknown parameter '${" + name + "}' (block '" + scope.block->name +
                     "' has parameters: " + join_names(scope.block->params) +
                     "; settings are written section.key)");
    fail_at(v, "unknown parameter '${" + name + "}' (outside a block only settings such as " +
                   "${data.input_size} can be referenced)");
  }

  std::string local_name(const toml::value& entry, size_t index, const Scope& scope) {
    if (!entry.is_table())
      fail_at(entry, std::string("a node must be a table such as { op = \"relu\" }, got ") +
                         toml_type_name(entry));
    const bool has_op = entry.contains("op"), has_use = entry.contains("use");
    if (has_op == has_use)
      fail_at(entry, "a node needs exactly one of 'op' (an op) or 'use' (a block)");
    if (entry.contains("name")) {
      const std::string name = expect_string(entry.at("name"), "name");
      if (name.empty() || name.find('.') != std::string::npos || name[0] == '@')
        fail_at(entry.at("name"), "node name '" + name + "' must be non-empty, without '.' or '@'");
      return name;
    }
    const std::string kind = has_op ? resolve_string(entry.at("op"), scope, "op")
                                    : expect_string(entry.at("use"), "use");
    return kind + "_" + std::to_string(index);
  }

  std::vector<std::string> resolve_inputs(const toml::value& entry, const std::string& prefix,
                                          const std::set<std::string>& locals, const Scope& scope,
                                          const std::optional<std::string>& block_input,
                                          const std::optional<std::string>& prev) {
    std::vector<const toml::value*> refs;
    if (entry.contains("in")) {
      const toml::value& in = entry.at("in");
      if (in.is_array()) {
        for (const toml::value& r : in.as_array()) refs.push_back(&r);
      } else {
        refs.push_back(&in);
      }
    }
    std::vector<std::string> names;
    if (refs.empty()) {
      if (!prev) fail_at(entry, "the first node of the graph needs an input: add in = \"image\"");
      names.push_back(*prev);
      return names;
    }
    for (const toml::value* r : refs) {
      const std::string ref = resolve_string(*r, scope, "an input name");
      if (ref == kPrevRef || ref == kInputRef) {
        const auto& target = ref == kPrevRef ? prev : block_input;
        if (!target) fail_at(*r, "'" + ref + "' has nothing to refer to here");
        names.push_back(*target);
      } else {
        names.push_back(locals.count(ref) ? join_name(prefix, ref) : ref);
      }
    }
    return names;
  }

  void define(const std::string& name, const toml::value& where) {
    auto [it, inserted] = defined_.emplace(name, loc_of(where));
    if (!inserted)
      fail_at(where,
              "duplicate tensor name '" + name + "' (first defined at " + it->second.str() + ")");
  }

  void expand_op(const toml::value& entry, const std::string& full,
                 const std::vector<std::string>& inputs, const Scope& scope) {
    // An op may be a block parameter (op = "${act}": relu or relu6).
    const toml::value& op_value = entry.at("op");
    const std::string op = resolve_string(op_value, scope, "op");
    const OpSchema* schema = find_op_schema(op);
    if (!schema) {
      std::vector<std::string> known;
      for (const OpSchema* s : all_op_schemas()) known.push_back(s->name);
      fail_at(op_value, "unknown op '" + op + "' (known ops: " + join_names(known) + ")");
    }
    const int n_in = static_cast<int>(inputs.size());
    if (n_in < schema->min_inputs || n_in > schema->max_inputs)
      fail_at(entry, "op '" + op + "' takes " + std::to_string(schema->min_inputs) +
                         (schema->max_inputs != schema->min_inputs
                              ? "-" + std::to_string(schema->max_inputs)
                              : "") +
                         " input(s), got " + std::to_string(n_in));
    Attrs attrs;
    for (const auto& [key, value] : entries_in_order(entry)) {
      if (key == "op" || key == "name" || key == "in") continue;
      const AttrSpec* spec = nullptr;
      for (const AttrSpec& s : schema->attrs) spec = s.name == key ? &s : spec;
      if (!spec) {
        std::vector<std::string> known;
        for (const AttrSpec& s : schema->attrs) known.push_back(s.name);
        fail_at(*value, "op '" + op + "' has no attribute '" + key +
                            "' (known: " + join_names(known) + ")");
      }
      attrs.set(key, typed_attr(*spec, *value, scope, op));
    }
    for (const AttrSpec& spec : schema->attrs) {
      if (attrs.has(spec.name)) continue;
      if (!spec.default_value)
        fail_at(entry, "op '" + op + "' needs attribute '" + spec.name + "' (" + spec.doc + ")");
      attrs.set(spec.name, *spec.default_value);
    }
    define(full, entry);
    graph_.nodes.push_back({full, op, attrs, inputs, loc_of(entry), op_id(*schema)});
  }

  AttrValue typed_attr(const AttrSpec& spec, const toml::value& v, const Scope& scope,
                       const std::string& op) {
    AttrValue value = resolve(v, scope);
    if (spec.type == AttrType::kFloat && std::holds_alternative<int64_t>(value))
      value = static_cast<double>(std::get<int64_t>(value));
    const bool ok = (spec.type == AttrType::kInt && std::holds_alternative<int64_t>(value)) ||
                    (spec.type == AttrType::kFloat && std::holds_alternative<double>(value)) ||
                    (spec.type == AttrType::kBool && std::holds_alternative<bool>(value)) ||
                    (spec.type == AttrType::kString && std::holds_alternative<std::string>(value));
    if (!ok)
      fail_at(v, "attribute '" + spec.name + "' of op '" + op + "' must be " +
                     attr_type_name(spec.type) + ", got " + attr_value_str(value));
    return value;
  }

  void expand_use(const toml::value& entry, const std::string& full,
                  const std::vector<std::string>& inputs, const Scope& scope) {
    const toml::value& use_value = entry.at("use");
    const std::string use = expect_string(use_value, "use");
    auto it = blocks_.find(use);
    if (it == blocks_.end()) {
      std::vector<std::string> known;
      for (const auto& [name, def] : blocks_) known.push_back(name);
      fail_at(use_value, "unknown block '" + use + "' (defined blocks: " + join_names(known) + ")");
    }
    const BlockDef& block = it->second;
    if (inputs.size() != 1) fail_at(entry, "a block takes exactly one input");
    std::map<std::string, AttrValue> args;
    for (const auto& [key, value] : entries_in_order(entry)) {
      if (key == "use" || key == "name" || key == "in") continue;
      if (key != "args")
        fail_at(*value, "unknown key '" + key + "' in a block use (expected use, name, in, args)");
      for (const auto& [param, arg] : entries_in_order(expect_table(*value, "args"))) {
        if (std::find(block.params.begin(), block.params.end(), param) == block.params.end())
          fail_at(*arg, "block '" + use + "' has no parameter '" + param +
                            "' (parameters: " + join_names(block.params) + ")");
        args[param] = resolve(*arg, scope);
      }
    }
    for (const std::string& param : block.params) {
      if (args.count(param)) continue;
      const auto def = block.defaults.find(param);
      if (def == block.defaults.end())
        fail_at(entry, "block '" + use + "' needs argument '" + param + "'");
      args[param] = resolve(def->second, {});
    }
    const Scope inner{&block, &args};
    const std::string last = expand_sequence(block.body, full, inner, inputs[0]);
    define(full, entry);
    graph_.aliases[full] = last;
  }

  Graph& graph_;
  const BlockLibrary& blocks_;
  const Config& config_;
  std::map<std::string, SourceLoc> defined_;
};

std::vector<GraphInput> read_inputs(Expander& ex, const toml::value& table,
                                    const std::string& what) {
  std::vector<GraphInput> inputs;
  for (const auto& [name, shape] : entries_in_order(expect_table(table, what))) {
    GraphInput input{name, {}, loc_of(*shape)};
    for (const toml::value& d : expect_array(*shape, what + "." + name).as_array()) {
      const int64_t dim = ex.resolve_int(d, {}, "a dimension of '" + name + "'");
      if (dim <= 0) fail_at(d, "dimension of '" + name + "' must be positive");
      input.shape.push_back(dim);
    }
    inputs.push_back(std::move(input));
  }
  return inputs;
}

void read_objective(Expander& ex, Graph& graph, const toml::value& objective) {
  if (!objective.contains("terms")) fail_at(objective, "[objective] needs terms = [ ... ]");
  for (const toml::value& term : expect_array(objective.at("terms"), "terms").as_array()) {
    expect_table(term, "an objective term");
    LossTerm t;
    bool has_loss = false;
    for (const auto& [key, value] : entries_in_order(term)) {
      if (key == "loss") {
        const std::string kind = ex.resolve_string(*value, {}, "loss");
        if (kind == "weighted_bce")
          t.kind = LossKind::kWeightedBce;
        else if (kind == "dice")
          t.kind = LossKind::kDice;
        else
          fail_at(*value, "unknown loss '" + kind + "' (known: weighted_bce, dice)");
        has_loss = true;
      } else if (key == "input") {
        t.input = ex.resolve_string(*value, {}, "input");
      } else if (key == "target") {
        t.target = ex.resolve_string(*value, {}, "target");
      } else if (key == "weight") {
        t.weight = ex.resolve_float(*value, {}, "weight");
      } else if (key == "pos_weight") {
        t.pos_weight = ex.resolve_float(*value, {}, "pos_weight");
      } else if (key == "eps") {
        t.eps = ex.resolve_float(*value, {}, "eps");
      } else {
        fail_at(*value, "unknown key '" + key +
                            "' in an objective term (expected loss, input, target, weight, "
                            "pos_weight, eps)");
      }
    }
    if (!has_loss || t.input.empty() || t.target.empty())
      fail_at(term, "an objective term needs loss, input and target");
    if (t.kind != LossKind::kWeightedBce && term.contains("pos_weight"))
      fail_at(term.at("pos_weight"), "pos_weight only applies to loss = \"weighted_bce\"");
    graph.objective.terms.push_back(t);
    graph.objective_locs.push_back(loc_of(term));
  }
}

}  // namespace

Graph expand_graph(const toml::value& graph_table, const toml::value* objective_table,
                   const BlockLibrary& blocks, const Config& config) {
  Graph graph;
  graph.loc = loc_of(graph_table);
  Expander ex(graph, blocks, config);
  expect_table(graph_table, "[graph]");
  const toml::value* nodes = nullptr;
  for (const auto& [key, value] : entries_in_order(graph_table)) {
    if (key == "name") {
      graph.name = expect_string(*value, "name");
    } else if (key == "inputs") {
      graph.inputs = read_inputs(ex, *value, "inputs");
    } else if (key == "targets") {
      graph.targets = read_inputs(ex, *value, "targets");
    } else if (key == "outputs") {
      for (const auto& [name, ref] : entries_in_order(expect_table(*value, "outputs")))
        graph.outputs.push_back({name, expect_string(*ref, "output '" + name + "'"), loc_of(*ref)});
    } else if (key == "nodes") {
      nodes = &expect_array(*value, "nodes");
    } else {
      fail_at(*value, "unknown key '" + key +
                          "' in [graph] (expected name, inputs, targets, outputs, nodes)");
    }
  }
  if (graph.name.empty()) fail_at(graph_table, "[graph] needs name = \"...\"");
  if (graph.inputs.empty()) fail_at(graph_table, "[graph] needs inputs = { image = [C, H, W] }");
  if (!nodes || nodes->as_array().empty()) fail_at(graph_table, "[graph] needs nodes = [ ... ]");
  if (graph.outputs.empty()) fail_at(graph_table, "[graph] needs outputs = { name = \"value\" }");
  check_block_uses(
      *nodes, blocks,
      {config.get_int("limits.max_graph_nodes"), config.get_int("limits.max_block_depth")});
  ex.expand_sequence(*nodes, "", {}, std::nullopt);
  if (objective_table) read_objective(ex, graph, *objective_table);
  graph.limits = {config.get_int("limits.max_tensor_elements"),
                  config.get_int("limits.max_arena_bytes")};
  return graph;
}

}  // namespace emt
