#pragma once

// `gro_receiver`: the UDP GRO receive path (not installed). See receiver.hpp
// for the family, and docs/design/net.md, "GRO receive path".
//
// The socket has UDP_GRO on: a peer that sent with GSO has its datagrams
// coalesced by the kernel into one receive. recvmmsg reads into jumbo slots
// (64 KiB); the UDP_GRO control message gives the segment size:
//
// - several datagrams: the slot becomes ONE binary, and each datagram is
//   handed on as its own slice of it (one refcount shared by all, no copy);
// - one datagram that fits a standard slot: copied into one (`gro_copied`)
//   so ordinary traffic does not pin 64 KiB while its handler runs; the
//   jumbo slot stays for the next round; a larger one keeps its jumbo slot;
// - MSG_TRUNC (a jumbo slot smaller than 64 KiB): dropped, counted once;
// - MSG_CTRUNC (the segment size was lost): the receive cannot be split
//   safely, so it is dropped and counted (`control_truncated`), never
//   delivered as one datagram.
//
// At most `kGroBatch` jumbo slots per loop, and all loops together at most
// half the jumbo class (the rest serves large replies).
//
// Ownership: the jumbo slots of the batch. Thread-safety: none (the IO
// thread). Cost per receive: one recvmmsg; per coalesced datagram: a slice.

#include <memory>

#include <mayfly/net/internal/receiver.hpp>

namespace mayfly::detail {

/// The GRO receive path; null when the socket has no UDP_GRO or there is no
/// jumbo class (`why` says which).
std::unique_ptr<receiver> make_gro_receiver(const receiver_env& env,
                                            std::string& why);

} // namespace mayfly::detail
