#pragma once
/// One enum's names as a table indexed by its (stable) numbers, for to_string.

#include <array>
#include <cstddef>
#include <string_view>

namespace pointex::domain {

/// The name of `value` in `names`, "unknown" past the table's end.
template <std::size_t N, class E>
std::string_view name_of(const std::array<std::string_view, N>& names, E value) {
  const auto i = static_cast<std::size_t>(value);
  return i < names.size() ? names[i] : std::string_view("unknown");
}

}  // namespace pointex::domain
