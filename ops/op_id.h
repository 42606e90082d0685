// Op identity: the rows of the op list (ops/ops.inc) as an enum, so that code names an op by
// its id and never compares op names as strings.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string_view>

namespace emt {

enum class OpId {
#define EMT_OP(name) name,
#include "ops/ops.inc"
#undef EMT_OP
};

inline constexpr std::array kOpNames = {
#define EMT_OP(name) std::string_view(#name),
#include "ops/ops.inc"
#undef EMT_OP
};

inline constexpr std::size_t kOpCount = kOpNames.size();

constexpr std::string_view op_name(OpId id) { return kOpNames[static_cast<std::size_t>(id)]; }

// The id of the op called `name` in the op list; nullopt for a name the list does not have.
constexpr std::optional<OpId> find_op_id(std::string_view name) {
  for (std::size_t i = 0; i < kOpCount; ++i)
    if (kOpNames[i] == name) return static_cast<OpId>(i);
  return std::nullopt;
}

}  // namespace emt
