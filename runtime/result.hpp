#pragma once

/// @file
/// `result<T>`: a value or an error code with a message.
///
/// The memory layer does not depend on CAF, so it cannot return
/// `caf::expected`; this is the same idea in a few lines (C++17 has no
/// `std::expected`). The actor layer converts a failed result into a
/// `caf::error` with `mayfly::to_caf_error`.
///
/// Cost: a `std::variant`; the message is a `const char*` to a string with
/// static storage duration, so making an error on a hot path never
/// allocates (only cold paths such as configuration set `subject`).

#include <string>
#include <utility>
#include <variant>

#include <mayfly/runtime/assert.hpp>
#include <mayfly/runtime/errc.hpp>

namespace mayfly {

/// An error code plus a static, human-readable explanation.
struct error_info {
  errc code;
  /// Static string; never null.
  const char* what = "";
  /// errno for `errc::system_error`, 0 otherwise.
  int sys_errno = 0;
  /// What the error is about, e.g. the configuration field
  /// "buffers.standard_capacity"; empty when not applicable. Only cold paths
  /// fill it (it may allocate).
  std::string subject = {};

  /// "what (subject)" or "what".
  std::string message() const {
    return subject.empty() ? std::string{what}
                           : subject + ": " + what;
  }
};

/// Either a `T` or an `error_info`. Check with `operator bool` before `*`.
template <class T>
class [[nodiscard]] result {
public:
  result(T value) : v_(std::move(value)) {
  }

  result(error_info err) : v_(err) {
  }

  result(errc code, const char* what = "", int sys_errno = 0)
    : v_(error_info{code, what, sys_errno, {}}) {
  }

  explicit operator bool() const noexcept {
    return v_.index() == 0;
  }

  T& operator*() & {
    MAYFLY_ASSERT(v_.index() == 0);
    return std::get<0>(v_);
  }

  T&& operator*() && {
    MAYFLY_ASSERT(v_.index() == 0);
    return std::get<0>(std::move(v_));
  }

  T* operator->() {
    MAYFLY_ASSERT(v_.index() == 0);
    return &std::get<0>(v_);
  }

  /// @pre `!*this`
  const error_info& error() const {
    MAYFLY_ASSERT(v_.index() == 1);
    return std::get<1>(v_);
  }

private:
  std::variant<T, error_info> v_;
};

} // namespace mayfly
