// The op list is the only list: the generated ids, names and schemas agree row for row.
#include <gtest/gtest.h>

#include "ops/registry.h"

namespace emt {
namespace {

TEST(OpList, IdsNamesAndSchemasAgreeRowForRow) {
  ASSERT_EQ(all_op_schemas().size(), kOpCount);
  for (size_t i = 0; i < kOpCount; ++i) {
    const OpId id = static_cast<OpId>(i);
    EXPECT_EQ(op_schema(id).name, op_name(id)) << "row " << i;
    EXPECT_EQ(op_id(op_schema(id)), id) << "row " << i;
    EXPECT_EQ(find_op_id(op_name(id)), id) << "row " << i;
  }
  EXPECT_EQ(find_op_id("conv2d"), OpId::conv2d);
  EXPECT_EQ(find_op_id("Conv"), std::nullopt);
}

TEST(OpList, ASchemaOutsideTheListHasNoId) {
  const OpSchema stranger{"relu", "a copy not in the list", 1, 1, {}, nullptr};
  EXPECT_THROW(op_id(stranger), OpError);
}

}  // namespace
}  // namespace emt
