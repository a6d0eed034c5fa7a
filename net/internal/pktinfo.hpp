#pragma once

// `pktinfo`: the local address of a datagram on a socket bound to a
// wildcard (not installed): where each datagram arrived, read from the
// IP_PKTINFO / IPV6_PKTINFO control message the kernel attaches, and the
// source a reply is sent from, set with the same control message on send
// (quinn-udp's `RecvMeta::dst_ip` / `Transmit::src_ip`; NSD and Knot do the
// same). Without it, a reply to a datagram sent to 127.0.0.2 on a 0.0.0.0
// socket leaves from the address the kernel picks (127.0.0.1), and a
// connected client (dig) drops it.
//
// Only sockets bound to a wildcard ask for it (`enable_destination_address`):
// a socket bound to one address knows its local address and pays nothing.
//
// Thread-safety: pure functions. Cost: a few comparisons and one 4- or
// 16-byte copy per control message; no allocation.

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>

#include <mayfly/actors/address.hpp>

namespace mayfly::detail {

/// Control bytes one receive needs for the destination address: a
/// dual-stack socket receiving IPv4 gets both an IPV6_PKTINFO and an
/// IP_PKTINFO message.
inline constexpr size_t kPktinfoReceiveSpace
  = CMSG_SPACE(sizeof(in6_pktinfo)) + CMSG_SPACE(sizeof(in_pktinfo));

/// Control bytes one send needs for its source address (the larger form).
inline constexpr size_t kPktinfoSendSpace = CMSG_SPACE(sizeof(in6_pktinfo));

/// Asks the kernel to attach each datagram's destination address on `fd`,
/// a socket of `family`: IP_PKTINFO for IPv4; IPV6_RECVPKTINFO for IPv6,
/// and IP_PKTINFO as well when the socket is dual-stack (IPv4 arrives
/// v4-mapped). Returns errno, or 0.
int enable_destination_address(int fd, int family, bool dual_stack) noexcept;

/// If `c` is an IP_PKTINFO or IPV6_PKTINFO message, writes the local
/// address it names into `local` (whose family and port are kept: an IPv4
/// address on an IPv6 `local` becomes v4-mapped) and returns true.
bool read_destination(const cmsghdr& c, udp_address& local) noexcept;

/// Writes, at `c` (with `kPktinfoSendSpace` bytes of room), the control
/// message that sends from `from`'s address, on whatever interface the
/// route picks; returns the bytes used (CMSG_SPACE). A v4-mapped `from`
/// gets IP_PKTINFO (the kernel sends such a datagram as IPv4).
size_t write_source(cmsghdr* c, const udp_address& from) noexcept;

} // namespace mayfly::detail
