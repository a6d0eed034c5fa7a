#pragma once

// `receiver`: one receive path of an IO loop, the first stage of a
// datagram's life (not installed). See docs/design/net.md, "Receive".
//
//   receiver ──► admission ──► handler ──► replier ──► kernel
//   (this)      admission.hpp             replier.hpp
//
// A receive path reads a batch from the kernel into pool slots and turns
// each datagram into a `datagram` (a slice of a binary, the peer, the time)
// that it hands to `admission::admit`. Three implementations, each in its
// own file, chosen once when the loop starts (Knot DNS's `udp_api_t`: one
// init/recv per path, the loop only sequences them):
//
// - `mmsg_receiver` (mmsg_receiver.cpp): recvmmsg into standard slots,
//   with a spill area for datagrams larger than a slot. The default.
// - `gro_receiver` (gro_receiver.cpp): UDP_GRO; recvmmsg into jumbo slots,
//   a coalesced receive becomes one binary and each datagram a slice of it.
// - `uring_receiver` (uring_receiver.cpp): a multishot recvmsg on io_uring
//   whose provided-buffer ring lends standard slots to the kernel.
//
// The two recvmmsg paths share everything but what they make of one
// received message: `recvmmsg_receiver` (recv_batch.hpp) reads the batch,
// gives its slots back when idle and counts what is left at close; each
// path supplies its `deliver`.
//
// Ownership: a receiver owns the slots it has taken from the pools and not
// yet handed on; destroying it gives them back. Thread-safety: none; the
// loop's IO thread makes it (`make_receiver`, so that io_uring work runs on
// that thread), calls it and destroys it. Kernel drops are not counted
// here: the socket's SO_MEMINFO counter is read when statistics are
// collected (no per-datagram control message for that).
//
// Each datagram carries its local address (`datagram::local`): the bound
// address, or on a socket bound to a wildcard the destination the kernel
// reports per datagram (IP_PKTINFO, pktinfo.hpp); a datagram without one
// is delivered all the same (its reply leaves from the kernel's default
// source) and counted in `pktinfo_missing`.

#include <cstdint>
#include <memory>
#include <string>

#include <mayfly/actors/address.hpp>
#include <mayfly/net/internal/io_counters.hpp>
#include <mayfly/net/internal/socket_calls.hpp>
#include <mayfly/net/udp_endpoint.hpp>
#include <mayfly/runtime/buffer_pool.hpp>

namespace mayfly::detail {

class admission;

/// What the kernel said about one received message before it becomes a
/// binary (quinn-udp's `RecvMeta`).
struct recv_meta {
  udp_address peer;               ///< source: where a reply goes
  /// Destination: the local address it arrived at (IP_PKTINFO), the
  /// source of a reply; the bound address when the kernel did not say.
  udp_address local;
  bool local_known = false;       ///< `local` came from a control message
  size_t len = 0;                 ///< bytes received (all segments, GRO)
  size_t segment = 0;             ///< GRO segment size; 0: one datagram
  bool truncated = false;         ///< MSG_TRUNC: larger than the buffers
  bool control_truncated = false; ///< MSG_CTRUNC: a control message lost
};

/// What one `receive` found.
enum class recv_status : uint8_t {
  got,     ///< something was read or reported: look again at once
  empty,   ///< nothing queued (EAGAIN): the loop may go idle
  starved, ///< no pool slot to read into: look again after a millisecond
};

/// What a receive path needs from its loop.
struct receiver_env {
  int fd = -1;                        ///< the loop's socket
  udp_address local;                  ///< the socket's bound address
  /// The socket is bound to a wildcard and asked for each datagram's
  /// destination address (IP_PKTINFO / IPV6_RECVPKTINFO): read it into
  /// `datagram::local`, count `pktinfo_missing` when it is absent.
  bool pktinfo = false;
  bool gro_enabled = false;           ///< the socket accepted UDP_GRO
  buffer_pools* pools = nullptr;
  const socket_calls* calls = nullptr;
  io_counters* counters = nullptr;
  uint32_t batch = 32;                ///< messages per receive
  uint32_t loops = 1;                 ///< loops sharing the pools (GRO sizing)
};

/// A receive path. See file comment.
class receiver {
public:
  virtual ~receiver();

  /// The path this is (after any fallback).
  virtual receive_path kind() const noexcept = 0;

  /// The fd that becomes readable when datagrams wait (the socket, or the
  /// io_uring's completion fd).
  virtual int wait_fd() const noexcept = 0;

  /// Reads one batch and admits every datagram, each stamped with the
  /// time of the read (one clock read per batch). Never blocks.
  virtual recv_status receive(admission& to) noexcept = 0;

  /// The loop has been idle for a while: give back the slots held ready for
  /// the next receive (the next `receive` takes fresh ones), so an idle
  /// endpoint holds no pool slot. The io_uring path keeps its ring's.
  virtual void release_idle() noexcept = 0;

  /// At close, after the last `receive`: counts datagrams that the kernel
  /// queued or handed over but nobody will read, and gives up the slots.
  /// The socket stays open (the loop closes it).
  virtual int64_t discard_queued() noexcept = 0;
};

/// The receive path `asked` for, or the recvmmsg one when it cannot be had
/// (`why` then says why). IO thread.
std::unique_ptr<receiver> make_receiver(receive_path asked,
                                        const receiver_env& env,
                                        std::string& why);

/// Steady-clock nanoseconds (what `datagram::received_ns` holds).
int64_t steady_now_ns() noexcept;

/// Most datagrams `drain_and_count` reads at close: far above what a 4 MiB
/// receive buffer can queue, and a bound on the time it can take.
constexpr int64_t kDrainAtCloseMax = int64_t{1} << 20;

/// Reads and counts what is queued on `fd` (GRO segments each counted),
/// without keeping anything: what a socket still held at close. Bounded by
/// `max` datagrams.
int64_t drain_and_count(int fd, int64_t max = kDrainAtCloseMax) noexcept;

} // namespace mayfly::detail
