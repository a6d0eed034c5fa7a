#pragma once

// Loopback clients shared by the tests (net, dns and the wire tests): a
// blocking UDP client, a blocking TCP client, and one-shot HTTP requests to
// a stats endpoint. Test code: the heap is fine here. Every wait is bounded
// (socket timeouts, bounded read loops), so a lost reply fails a test
// instead of hanging it. Not thread-safe: one thread uses one client.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include <mayfly/actors/address.hpp>

namespace mayfly::test {

/// A blocking UDP client for loopback tests: a connected socket with a
/// receive timeout; optionally bound to a loopback address of its own
/// (127.0.0.2, ...), to be a source of its own.
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

/// A blocking TCP connection with send and receive timeouts.
class tcp_client {
public:
  explicit tcp_client(const udp_address& server, int timeout_ms = 5000) {
    fd_ = ::socket(server.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    connected_ = fd_ >= 0
                 && ::connect(fd_, server.sockaddr_ptr(), server.size()) == 0;
    if (!connected_)
      connect_errno_ = errno;
  }

  ~tcp_client() {
    ::close(fd_);
  }

  tcp_client(const tcp_client&) = delete;
  tcp_client& operator=(const tcp_client&) = delete;

  bool connected() const {
    return connected_;
  }

  /// errno of the failed connect (0 when connected).
  int connect_errno() const {
    return connect_errno_;
  }

  int fd() const {
    return fd_;
  }

  /// Sends everything (false if the peer closed or the send timed out).
  bool send(std::string_view bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      auto n = ::send(fd_, bytes.data() + done, bytes.size() - done,
                      MSG_NOSIGNAL);
      if (n <= 0)
        return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }

  void shutdown_write() {
    ::shutdown(fd_, SHUT_WR);
  }

  /// Everything up to EOF, reset or the receive timeout (at most 160 MB).
  std::string read_all() {
    std::string out;
    char buf[16384];
    for (int i = 0; i < 10000; ++i) {
      auto n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0)
        break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

  /// Whether the server closed the connection (EOF or reset), discarding
  /// whatever came before: within the receive timeout when `wait`, else
  /// from what has arrived already.
  bool closed_by_peer(bool wait = true) {
    char buf[4096];
    for (int i = 0; i < 100000; ++i) {
      auto n = ::recv(fd_, buf, sizeof(buf), wait ? 0 : MSG_DONTWAIT);
      if (n == 0)
        return true;
      if (n < 0)
        return errno == ECONNRESET;
    }
    return false;
  }

private:
  int fd_ = -1;
  bool connected_ = false;
  int connect_errno_ = 0;
};

/// Status code of a whole HTTP response, 0 if it is none.
inline int status_of(const std::string& response) {
  if (response.size() < 12 || response.rfind("HTTP/1.", 0) != 0)
    return 0;
  return std::atoi(response.c_str() + 9);
}

/// One HTTP response, split.
struct http_reply {
  int status = 0; ///< 0: no response (refused, closed or timed out)
  std::string head;
  std::string body;
};

/// One request on a fresh connection (`Connection: close`, a Host header
/// naming `at`, a Content-Length when `body` is not empty); reads until the
/// server closes the connection or 5 s pass without a byte.
inline http_reply http_request(const udp_address& at, const std::string& method,
                               const std::string& target,
                               const std::string& body = "") {
  http_reply r;
  tcp_client c{at};
  if (!c.connected())
    return r;
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1:"
                    + std::to_string(at.port()) + "\r\nConnection: close\r\n";
  if (!body.empty())
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  c.send(req); // a server that refuses early may close first: read it
  auto resp = c.read_all();
  auto end = resp.find("\r\n\r\n");
  r.status = end == std::string::npos ? 0 : status_of(resp);
  if (r.status == 0)
    return r;
  r.head = resp.substr(0, end);
  r.body = resp.substr(end + 4);
  return r;
}

/// The body of `GET target` from the HTTP endpoint at `at` when it answered
/// 200; nothing otherwise.
inline std::optional<std::string> http_get(const udp_address& at,
                                           const std::string& target) {
  auto r = http_request(at, "GET", target);
  if (r.status != 200)
    return std::nullopt;
  return std::move(r.body);
}

} // namespace mayfly::test
