#pragma once

/// @file
/// `udp_address`: an IPv4 or IPv6 address and port, by value.
///
/// 28 bytes (a `sockaddr_in6` at most), trivially copyable, so it travels in
/// every datagram message without allocation. Parsing and formatting are
/// cold-path helpers.

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include <mayfly/runtime/result.hpp>

namespace mayfly {

/// An IPv4 or IPv6 socket address. See file comment.
class udp_address {
public:
  /// The unspecified address (family AF_UNSPEC).
  udp_address() noexcept {
    std::memset(&storage_, 0, sizeof(storage_));
  }

  /// Copies `len` bytes of `sa` (AF_INET or AF_INET6); anything else yields
  /// the unspecified address.
  udp_address(const sockaddr* sa, socklen_t len) noexcept;

  /// Parses "1.2.3.4:port", "[::1]:port" or, with `default_port`, a bare
  /// address. Numeric only: no name lookup. The port is digits only, at
  /// most 65535. An error names the text (`subject` is `'text'`), e.g.
  /// "'abc': not a numeric IPv4 or IPv6 address". Cold path: an error
  /// allocates.
  static result<udp_address> parse(std::string_view text,
                                   int default_port = -1);

  /// "127.0.0.1:9000" or "[::1]:9000". Allocates (cold path).
  std::string to_string() const;

  int family() const noexcept {
    return storage_.v4.sin_family;
  }

  bool is_v6() const noexcept {
    return family() == AF_INET6;
  }

  uint16_t port() const noexcept;

  /// Whether the address is a wildcard: 0.0.0.0 or :: (any port). A socket
  /// bound to one receives on every local address. O(1).
  bool is_unspecified() const noexcept;

  const sockaddr* sockaddr_ptr() const noexcept {
    return reinterpret_cast<const sockaddr*>(&storage_);
  }

  sockaddr* sockaddr_ptr() noexcept {
    return reinterpret_cast<sockaddr*>(&storage_);
  }

  /// Length of the sockaddr for `family()` (0 when unspecified).
  socklen_t size() const noexcept;

  /// Largest sockaddr this type holds (for recvmmsg's msg_namelen).
  static constexpr socklen_t capacity() noexcept {
    return sizeof(sockaddr_in6);
  }

  friend bool operator==(const udp_address& x, const udp_address& y) noexcept;

  friend bool operator!=(const udp_address& x, const udp_address& y) noexcept {
    return !(x == y);
  }

private:
  union storage {
    sockaddr_in v4;
    sockaddr_in6 v6;
  } storage_;
};

} // namespace mayfly
