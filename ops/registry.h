#pragma once

#include <string>
#include <vector>

#include "ops/core/op.h"
#include "ops/op_id.h"

namespace emt {

// nullptr when no op has this name.
const OpSchema* find_op_schema(const std::string& name);
const std::vector<const OpSchema*>& all_op_schemas();  // in op-list order: index = OpId
const OpSchema& op_schema(OpId id);
OpId op_id(const OpSchema& schema);

}  // namespace emt

namespace emt {

// Fills missing attributes with the schema's defaults; throws OpError naming the first required
// attribute that is missing or the first attribute the schema does not know.
Attrs complete_attrs(const OpSchema& schema, const Attrs& given);

// complete_attrs + create: the short path for tests and programmatic graphs.
std::unique_ptr<Op> create_op(const std::string& name, const Attrs& given = {});

}  // namespace emt
