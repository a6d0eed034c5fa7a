#pragma once

// A blocking UDP client for loopback tests: a connected socket with a
// receive timeout, so a lost reply fails the test instead of hanging it;
// optionally bound to a loopback address of its own (127.0.0.2, ...), to
// be a source of its own.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <optional>
#include <string>

#include <mayfly/actors/address.hpp>

namespace mayfly::test {

class udp_client {
public:
  /// `local_ipv4`: the address to send from (IPv4 only); null: any.
  explicit udp_client(const udp_address& server, int timeout_ms = 2000,
                      const char* local_ipv4 = nullptr) {
    fd_ = ::socket(server.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    int size = 4 << 20;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size));
    if (local_ipv4 != nullptr) {
      sockaddr_in local{};
      local.sin_family = AF_INET;
      ok_ = ::inet_pton(AF_INET, local_ipv4, &local.sin_addr) == 1
            && ::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof(local))
                 == 0;
    }
    ok_ = ok_ && ::connect(fd_, server.sockaddr_ptr(), server.size()) == 0;
  }

  ~udp_client() {
    ::close(fd_);
  }

  udp_client(const udp_client&) = delete;
  udp_client& operator=(const udp_client&) = delete;

  bool send(std::string_view bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), 0)
           == static_cast<ssize_t>(bytes.size());
  }

  /// The next datagram, or nothing after the timeout.
  std::optional<std::string> receive() {
    std::string buf(65536, '\0');
    auto n = ::recv(fd_, buf.data(), buf.size(), 0);
    if (n < 0)
      return std::nullopt;
    buf.resize(static_cast<size_t>(n));
    return buf;
  }

  int fd() const {
    return fd_;
  }

  /// Whether the socket was made, bound and connected.
  bool ok() const {
    return fd_ >= 0 && ok_;
  }

private:
  int fd_ = -1;
  bool ok_ = true;
};

} // namespace mayfly::test
