#pragma once

/// @file
/// `udp_socket`: a move-only UDP socket, and every socket system call mayfly
/// makes, each wrapped once and returning errno as a value.
///
/// Nothing here throws; failures come back as `result` with
/// `errc::system_error` and the errno. Not thread-safe as an object, but the
/// kernel lets several threads send on one UDP socket at once.

#include <sys/socket.h>

#include <cstdint>
#include <utility>

#include <mayfly/actors/address.hpp>
#include <mayfly/runtime/result.hpp>

namespace mayfly {

/// Socket options applied by `udp_socket::open`.
struct socket_options {
  /// SO_REUSEPORT: several sockets (one per receive thread) share the port.
  bool reuse_port = false;
  /// Receive buffer in bytes; 0 keeps the kernel default. As root,
  /// SO_RCVBUFFORCE raises it beyond net.core.rmem_max.
  uint32_t receive_buffer = 0;
  /// Send buffer in bytes; 0 keeps the kernel default.
  uint32_t send_buffer = 0;
  /// SO_RXQ_OVFL: the kernel attaches its drop counter to each datagram.
  /// Off by default: it costs a control message per datagram, and
  /// `kernel_drops()` (SO_MEMINFO) reads the same counter on demand.
  bool drop_counter = false;
  /// UDP_GRO: receive coalesced segments (needs a GSO sender to matter).
  bool gro = false;
  /// IP_PKTINFO / IPV6_RECVPKTINFO: the kernel attaches each datagram's
  /// destination address (a control message per datagram). What a socket
  /// bound to a wildcard needs to reply from the address a datagram
  /// arrived at; a socket bound to one address does without.
  bool destination_address = false;
  /// IPv6 sockets only: clear IPV6_V6ONLY, so that [::] also receives IPv4
  /// (peers appear v4-mapped, [::ffff:a.b.c.d]). Off: IPv6 only.
  bool dual_stack = false;
};

/// A move-only UDP socket (Seastar's `file_desc` idea). See file comment.
class udp_socket {
public:
  udp_socket() noexcept = default;

  udp_socket(udp_socket&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), gro_(std::exchange(other.gro_, false)) {
  }

  udp_socket& operator=(udp_socket&& other) noexcept {
    udp_socket tmp{std::move(other)};
    std::swap(fd_, tmp.fd_);
    std::swap(gro_, tmp.gro_);
    return *this;
  }

  ~udp_socket();

  /// A non-blocking socket bound to `local` with `opts` applied (IPv6
  /// sockets are IPV6_V6ONLY unless `opts.dual_stack`). Options the
  /// kernel refuses are reported, except `receive_buffer` (falls back from
  /// SO_RCVBUFFORCE to SO_RCVBUF) and `gro` (see `gro_enabled`).
  static result<udp_socket> open(const udp_address& local,
                                 const socket_options& opts) noexcept;

  int fd() const noexcept {
    return fd_;
  }

  explicit operator bool() const noexcept {
    return fd_ >= 0;
  }

  /// The bound address (useful after binding port 0).
  result<udp_address> local_address() const noexcept;

  /// Effective receive buffer (what the kernel reports, i.e. doubled).
  int receive_buffer() const noexcept;

  /// The kernel's drop counter for this socket (SO_MEMINFO), or -1 if the
  /// kernel cannot tell. Any thread; one getsockopt.
  int64_t kernel_drops() const noexcept;

  /// Whether the kernel can send with UDP GSO on this socket (UDP_SEGMENT
  /// is known: Linux 4.18+). One getsockopt.
  bool gso_supported() const noexcept;

  /// Whether UDP_GRO was accepted by the kernel.
  bool gro_enabled() const noexcept {
    return gro_;
  }

  /// Connects (for clients: replies from other peers are then filtered).
  result<bool> connect(const udp_address& peer) noexcept;

  /// Takes the socket out of the port's delivery: connects it to its own
  /// address (loopback for a wildcard bind), which no client sends from.
  /// The kernel then queues no new datagram from other peers to it; they go
  /// to the port's other sockets (SO_REUSEPORT; on Linux 6.18 a connected
  /// socket even leaves the group) or are refused. What it queued before
  /// stays readable, and replies with an explicit address still leave.
  result<bool> leave_port() noexcept;

  void close() noexcept;

private:
  explicit udp_socket(int fd) noexcept : fd_(fd) {
  }

  int fd_ = -1;
  bool gro_ = false;
};

} // namespace mayfly
