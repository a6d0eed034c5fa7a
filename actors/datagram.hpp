#pragma once

/// @file
/// `datagram`: what a handler actor receives; `datagram_sink`: where its
/// replies go.
///
/// A datagram is a `slice` of a received binary plus the peer's address, the
/// local address it arrived at and the sink (the UDP endpoint) it arrived
/// on. It is a value: copying it adds a reference to the binary, moving it
/// does not. 104 bytes, no allocation.
///
/// `datagram_sink` is the seam between the actor layer and the network
/// layer: `net::udp_endpoint` implements it with batched `sendmmsg`; tests
/// implement it with an in-memory fake. Sinks are called from the threads
/// handlers run on (an IO thread, CAF workers), concurrently.

#include <cstdint>
#include <string_view>

#include <mayfly/actors/address.hpp>
#include <mayfly/runtime/slice.hpp>

namespace caf {
class execution_unit;
} // namespace caf

namespace mayfly {

struct datagram;

/// Receives replies: a UDP endpoint, or a fake in tests. Thread-safe.
///
/// A reply answers a request: the sink sends it to the request's peer (and,
/// where the sink knows it, from the address the request arrived at).
/// `caller` is the execution unit the replying handler runs on
/// (`self->context()`): a sink whose own thread runs handlers (a UDP
/// endpoint's IO loop) recognises its own unit and puts the reply straight
/// into its outgoing batch, without crossing a queue.
class datagram_sink {
public:
  virtual ~datagram_sink();

  /// Queues `payload` as the reply to `request` without copying it (the
  /// slice is held until the kernel took it). Returns false if the datagram
  /// was dropped (the sink counts why). Any thread; never blocks for long.
  virtual bool send(const datagram& request, slice payload,
                    const caf::execution_unit* caller) noexcept = 0;

  /// Copies `bytes` into a send buffer and queues them as the reply to
  /// `request`. Same contract as `send`.
  virtual bool send_copy(const datagram& request, std::string_view bytes,
                         const caf::execution_unit* caller) noexcept = 0;
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
  /// The local address and port it arrived at: where the peer sent it, and
  /// the source of a reply. An endpoint bound to a wildcard (0.0.0.0, [::])
  /// reads it from each datagram (IP_PKTINFO / IPV6_PKTINFO); an IPv4
  /// datagram on a dual-stack [::] endpoint shows it v4-mapped
  /// ([::ffff:a.b.c.d]:port), as `peer`. Otherwise, and when the kernel did
  /// not say, it is the bound address. Unspecified when made by hand.
  udp_address local;

  /// The address the request arrived at (`local`).
  const udp_address& local_address() const noexcept {
    return local;
  }
};

} // namespace mayfly
