#include "ops/registry.h"

#define EMT_OP(name)               \
  namespace emt {                  \
  const OpSchema& name##_schema(); \
  }
#include "ops/ops.inc"
#undef EMT_OP

namespace emt {

const std::vector<const OpSchema*>& all_op_schemas() {
  static const std::vector<const OpSchema*> schemas = {
#define EMT_OP(name) &name##_schema(),
#include "ops/ops.inc"
#undef EMT_OP
  };
  return schemas;
}

const OpSchema& op_schema(OpId id) { return *all_op_schemas()[static_cast<size_t>(id)]; }

OpId op_id(const OpSchema& schema) {
  const std::optional<OpId> id = find_op_id(schema.name);
  if (!id || &op_schema(*id) != &schema)
    throw OpError("op schema '" + schema.name + "' is not the op list's row of that name");
  return *id;
}

const OpSchema* find_op_schema(const std::string& name) {
  for (const OpSchema* schema : all_op_schemas())
    if (schema->name == name) return schema;
  return nullptr;
}

}  // namespace emt

namespace emt {

Attrs complete_attrs(const OpSchema& schema, const Attrs& given) {
  for (const auto& [name, value] : given.values()) {
    bool known = false;
    for (const AttrSpec& spec : schema.attrs) known = known || spec.name == name;
    if (!known) throw OpError("op '" + schema.name + "' has no attribute '" + name + "'");
  }
  Attrs complete = given;
  for (const AttrSpec& spec : schema.attrs) {
    if (complete.has(spec.name)) continue;
    if (!spec.default_value)
      throw OpError("op '" + schema.name + "' needs attribute '" + spec.name + "'");
    complete.set(spec.name, *spec.default_value);
  }
  return complete;
}

std::unique_ptr<Op> create_op(const std::string& name, const Attrs& given) {
  const OpSchema* schema = find_op_schema(name);
  if (!schema) throw OpError("unknown op '" + name + "'");
  return schema->create(complete_attrs(*schema, given));
}

}  // namespace emt
