#pragma once

// A blocking UDP client for loopback tests: a connected socket with a
// receive timeout, so a lost reply fails the test instead of hanging it.

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <optional>
#include <string>

#include <mayfly/actors/address.hpp>

namespace mayfly::test {

class udp_client {
public:
  explicit udp_client(const udp_address& server, int timeout_ms = 2000) {
    fd_ = ::socket(server.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    int size = 4 << 20;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size));
    ::connect(fd_, server.sockaddr_ptr(), server.size());
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

private:
  int fd_ = -1;
};

} // namespace mayfly::test
