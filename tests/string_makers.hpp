#pragma once
// Readable names of result codes and states in Catch2 failure messages.

#include <catch2/catch.hpp>
#include <string>

#include "pointex/types.hpp"

namespace Catch {
template <>
struct StringMaker<pointex::TransferResult> {
  static std::string convert(pointex::TransferResult v) { return std::string(to_string(v)); }
};
template <>
struct StringMaker<pointex::AccountResult> {
  static std::string convert(pointex::AccountResult v) { return std::string(to_string(v)); }
};
template <>
struct StringMaker<pointex::LedgerResult> {
  static std::string convert(pointex::LedgerResult v) { return std::string(to_string(v)); }
};
template <>
struct StringMaker<pointex::CloseResult> {
  static std::string convert(pointex::CloseResult v) { return std::string(to_string(v)); }
};
template <>
struct StringMaker<pointex::TransferState> {
  static std::string convert(pointex::TransferState v) { return std::string(to_string(v)); }
};
}  // namespace Catch
