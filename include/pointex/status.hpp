#pragma once
/// Status of an engine-level operation (not a business outcome: those are result codes).

#include <string>
#include <utility>

namespace pointex {

class Status {
 public:
  enum class Code : unsigned char {
    ok = 0,
    invalid_argument = 1,
    /// Back-pressure: nothing was applied; retry later with the same ids.
    overloaded = 2,
    /// The event log failed; the engine stopped (fail-stop). Reopen the data dir.
    io_error = 3,
    /// Stored data cannot be read (damaged, or written by a newer PointEx).
    corruption = 4,
    /// The engine is closing or has stopped.
    shutting_down = 5,
    timed_out = 6,
  };

  Status() = default;
  static Status ok() { return Status(); }
  static Status invalid_argument(std::string m) { return {Code::invalid_argument, std::move(m)}; }
  static Status overloaded(std::string m) { return {Code::overloaded, std::move(m)}; }
  static Status io_error(std::string m) { return {Code::io_error, std::move(m)}; }
  static Status corruption(std::string m) { return {Code::corruption, std::move(m)}; }
  static Status shutting_down(std::string m) { return {Code::shutting_down, std::move(m)}; }
  static Status timed_out(std::string m) { return {Code::timed_out, std::move(m)}; }

  bool is_ok() const { return code_ == Code::ok; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string to_string() const;

 private:
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}
  Code code_ = Code::ok;
  std::string message_;
};

}  // namespace pointex
