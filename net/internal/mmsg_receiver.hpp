#pragma once

// `mmsg_receiver`: the default receive path, recvmmsg into standard pool
// slots (not installed). See receiver.hpp for the family, and
// docs/design/net.md, "Receive".
//
// Each message of a batch reads into its own standard slot and, behind it,
// a private spill area of 64 KiB less a slot, so any UDP datagram fits:
//
// - fits a slot (the common case): the slot is frozen into a binary and
//   the datagram is a slice of it, written there by the kernel: no copy;
// - larger: copied once, slot part and spill part, into a jumbo slot
//   (`spilled`); no jumbo slot: dropped, counted (`large_drops`);
// - MSG_TRUNC (larger than slot + spill; only when the spill area could
//   not be mapped): dropped, counted (`truncated`), never delivered cut.
//
// Slots not used in a round stay for the next, so in steady state only the
// slots that became binaries are replaced. When the pool can give only
// some, only that many datagrams are read; none: `starved` (the kernel
// queues, then drops; memory never grows beyond the pool).
//
// Ownership: the slots of the batch and the spill mapping. Thread-safety:
// none (the IO thread). Cost per batch: one recvmmsg, one clock read by the
// loop; per datagram: a slot from the pool and a freeze, no allocation.

#include <memory>

#include <mayfly/net/internal/receiver.hpp>

namespace mayfly::detail {

/// The recvmmsg receive path. See file comment.
std::unique_ptr<receiver> make_mmsg_receiver(const receiver_env& env);

} // namespace mayfly::detail
