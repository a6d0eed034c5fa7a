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
///
/// Reading the value of a result that holds an error (`*r`, `r->`,
/// `r.value()`) is a bug in the caller: it prints the error's message
/// (`mayfly: used the value of a failed result: ...`) and aborts. Check
/// with `if (!r)` first and print `r.error().message()`, which names what
/// the error is about and, for a failed system call, the errno text.
///
/// When `T` is a pointer (`udp_endpoint*`, `std::unique_ptr<runtime>`),
/// `r->` reaches the object pointed to: `ep->local_address()`,
/// `made->start()`. `*r` and `r.value()` still give the pointer itself
/// (`made.value().reset()` destroys the runtime).

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <system_error>
#include <type_traits>
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

  /// "subject: what: errno text", leaving out the parts that are empty,
  /// e.g. "127.0.0.1:9000: bind() failed: Address already in use". (An
  /// empty `what` with a `subject` means the subject says it all.)
  /// Allocates (cold path).
  std::string message() const {
    std::string text = subject.empty() ? std::string{what}
                       : *what == '\0' ? subject
                                       : subject + ": " + what;
    if (sys_errno != 0)
      text += ": " + std::system_category().message(sys_errno);
    return text;
  }
};

namespace detail {

/// Prints what a failed result holds and aborts (see the file comment).
[[noreturn]] inline void used_failed_result(const error_info& err) noexcept {
  std::fprintf(stderr, "mayfly: used the value of a failed result: %s\n",
               err.message().c_str());
  std::abort();
}

template <class T>
struct is_smart_pointer : std::false_type {};
template <class T, class D>
struct is_smart_pointer<std::unique_ptr<T, D>> : std::true_type {};
template <class T>
struct is_smart_pointer<std::shared_ptr<T>> : std::true_type {};

} // namespace detail

/// Either a `T` or an `error_info`. Check with `operator bool` before `*`,
/// `->` or `value()`; see the file comment for what misuse prints.
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

  /// The value. @pre `*this` (else prints the error and aborts)
  T& value() & {
    check();
    return std::get<0>(v_);
  }

  /// The value. @pre `*this` (else prints the error and aborts)
  const T& value() const& {
    check();
    return std::get<0>(v_);
  }

  /// The value, moved out. @pre `*this` (else prints the error and aborts)
  T&& value() && {
    check();
    return std::get<0>(std::move(v_));
  }

  T& operator*() & {
    return value();
  }

  const T& operator*() const& {
    return value();
  }

  T&& operator*() && {
    return std::move(*this).value();
  }

  /// The value's members; for a pointer `T`, the members of the object it
  /// points to. @pre `*this` (else prints the error and aborts)
  auto operator->() {
    if constexpr (std::is_pointer_v<T>) {
      return value();
    } else if constexpr (detail::is_smart_pointer<T>::value) {
      return value().get();
    } else {
      return &value();
    }
  }

  /// See the non-const overload.
  auto operator->() const {
    if constexpr (std::is_pointer_v<T>) {
      return value();
    } else if constexpr (detail::is_smart_pointer<T>::value) {
      return value().get();
    } else {
      return &value();
    }
  }

  /// @pre `!*this`
  const error_info& error() const {
    MAYFLY_ASSERT(v_.index() == 1);
    return std::get<1>(v_);
  }

private:
  void check() const noexcept {
    if (__builtin_expect(v_.index() != 0, 0))
      detail::used_failed_result(std::get<1>(v_));
  }

  std::variant<T, error_info> v_;
};

} // namespace mayfly
