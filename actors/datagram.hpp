#pragma once

/// @file
/// `datagram`: what a handler actor receives; `datagram_sink`: where its
/// replies go.
///
/// A datagram is a `slice` of a received binary plus the peer's address and
/// the sink (the UDP endpoint) it arrived on. It is a value: copying it adds
/// a reference to the binary, moving it does not. 72 bytes, no allocation.
///
/// `datagram_sink` is the seam between the actor layer and the network
/// layer: `net::udp_endpoint` implements it with batched `sendmmsg`; tests
/// implement it with an in-memory fake. Sinks are called from CAF worker
/// threads, concurrently.

#include <cstdint>
#include <string_view>

#include <mayfly/runtime/address.hpp>
#include <mayfly/runtime/slice.hpp>

namespace mayfly {

/// Receives replies: a UDP endpoint, or a fake in tests. Thread-safe.
class datagram_sink {
public:
  virtual ~datagram_sink();

  /// Queues `payload` for `to` without copying it (the slice is held until
  /// the kernel took it). Returns false if the datagram was dropped (the sink
  /// counts why). Any thread; never blocks for long.
  virtual bool send(const udp_address& to, slice payload) noexcept = 0;

  /// Copies `bytes` into a send buffer and queues them for `to`. Same
  /// contract as `send`.
  virtual bool send_copy(const udp_address& to,
                         std::string_view bytes) noexcept = 0;
};

/// One received datagram. See file comment.
struct datagram {
  /// The bytes; a slice of the received binary (shares its refcount).
  slice payload;
  /// Where it came from, and where a reply goes.
  udp_address peer;
  /// The endpoint it arrived on (null when made by hand, e.g. in tests).
  datagram_sink* source = nullptr;
  /// Steady-clock nanoseconds at receipt (0 if unknown).
  int64_t received_ns = 0;
};

} // namespace mayfly
