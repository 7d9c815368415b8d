// Names of the check-back enums, as they appear in the HTTP API and in logs.
#include <array>

#include "domain/enum_names.hpp"
#include "pointex/checkback.hpp"

namespace pointex {

using domain::name_of;
namespace {

constexpr std::array<std::string_view, check_back_result_count> result_names = {
    "ok",
    "exists",
    "exists_with_different_fields",
    "transfer_invalid",
    "id_reserved",
    "url_invalid",
    "check_after_invalid",
    "checks_max_invalid",
    "not_found",
    "not_parked",
    "note_too_long",
};
constexpr std::array<std::string_view, 6> status_names = {
    "pending", "committed", "rolled_back", "parked", "resolved", "failed",
};
constexpr std::array<std::string_view, 3> answer_names = {"commit", "rollback", "unknown"};

}  // namespace

std::string_view to_string(CheckBackResult result) {
  return name_of(result_names, result);
}
std::string_view to_string(CheckBackStatus status) {
  return name_of(status_names, status);
}
std::string_view to_string(CheckAnswer answer) {
  return name_of(answer_names, answer);
}

}  // namespace pointex
