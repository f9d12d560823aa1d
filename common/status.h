#pragma once
// Status and Result<T>: how dsx's pure libraries (policy, provenance, protocol) report failure
// without exceptions. A Status is a code plus a message a user can act on; Result<T> holds either
// a value or a non-OK Status. Both are plain values: copy them, return them, no sharing.

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace dsx {

class Status {
 public:
  enum class Code { kOk, kInvalidArgument, kNotFound, kFailedPrecondition, kInternal };

  Status() = default;
  static Status ok() { return Status(); }
  static Status invalid_argument(std::string message) {
    return Status(Code::kInvalidArgument, std::move(message));
  }
  static Status not_found(std::string message) {
    return Status(Code::kNotFound, std::move(message));
  }
  static Status failed_precondition(std::string message) {
    return Status(Code::kFailedPrecondition, std::move(message));
  }
  static Status internal(std::string message) {
    return Status(Code::kInternal, std::move(message));
  }

  bool is_ok() const { return code_ == Code::kOk; }
  explicit operator bool() const { return is_ok(); }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  Code code_ = Code::kOk;
  std::string message_;
};

// Either a T or an error Status. Accessing value() of an error is a programming error (asserts).
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!std::get<Status>(v_).is_ok() && "a Result error needs a non-OK Status");
  }

  bool is_ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return is_ok(); }

  const T& value() const& { return std::get<T>(v_); }
  T& value() & { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

  // The error; Status::ok() when this holds a value.
  Status status() const { return is_ok() ? Status::ok() : std::get<Status>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace dsx
