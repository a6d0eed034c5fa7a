#pragma once

/// @file
/// `udp_endpoint`: a UDP port served by handler actors.
///
/// Each endpoint runs `receive_threads` IO loops, each with its own socket
/// (SO_REUSEPORT when there are several) and its own thread:
///
/// ```
///          recvmmsg (batch)                          sendmmsg (batch)
///  kernel ------------------> pool slots ---+      +-----------------> kernel
///                             (binaries)    |      |
///                                           v      |
///                         one handler actor per datagram, run first on
///                         this IO thread (handler_start::io_thread)
///                                           |      ^
///              handler (or a CAF worker) ---+      | reply queue (lock-free,
///                     ctx.reply(slice | bytes) ----+  bounded) + eventfd wake
/// ```
///
/// **Where handlers run.** By default a handler's first activation runs on
/// the IO thread that received its datagram, at once (`inline_runner`):
/// what it does until it finishes or waits for a message; later
/// activations run on CAF's workers. `handler_start::workers` hands every
/// handler to the workers instead (see `handler_start`).
///
/// **Receive.** `recvmmsg` reads up to `batch` datagrams straight into
/// standard pool slots, one binary per datagram: no copy. A datagram larger
/// than a standard slot spills into a jumbo slot prepared for that message
/// (one copy of the first slot's bytes, so the binary is contiguous). A
/// truncated datagram (MSG_TRUNC: larger than slot + spill) is counted and
/// dropped, never delivered as if whole. Zero-length datagrams are valid.
/// When the standard pool is exhausted the loop stops reading until slots
/// come back (the kernel queues, then drops, and SO_RXQ_OVFL counts it).
/// When the handler type is at its in-flight bound, the runtime's
/// `overload_policy` decides: `pause` holds the batch and stops reading;
/// `drop` drops and counts.
///
/// **Send.** Replies are queued by handlers on any worker (`reply(slice)`:
/// no copy; `reply(bytes)`: one copy into a packed send buffer, made on the
/// worker) and sent by the IO thread in `sendmmsg` batches. The queue is
/// drained whenever the loop wakes, so a lone reply leaves at once (an
/// eventfd wakes a sleeping loop) and replies that arrive together leave
/// together. EAGAIN waits for POLLOUT; other send errors drop that datagram
/// (counted) and go on. A full reply queue drops the reply (counted); a
/// worker never blocks. (A handler running inline on the IO thread first
/// lets its loop send what the socket takes, then queues the reply.)
///
/// **Optional paths** (`endpoint_config::receive_path`, `gso`), each
/// detected when the endpoint opens, with a log line naming the path in use
/// and a clean fallback to the default:
///
/// - `receive_path::gro`: UDP_GRO on the socket. `recvmmsg` reads into
///   jumbo slots (64 KiB); a receive that coalesced several datagrams of one
///   peer (the sender used GSO) becomes ONE binary, and each datagram is
///   handed to its own handler as a slice of it (one refcount shared by
///   all, no copy). A receive holding a single datagram that fits a standard
///   slot is copied into one (at most a slot's bytes), so ordinary traffic
///   does not pin 64 KiB per datagram. Falls back to `recvmmsg` when the
///   kernel refuses UDP_GRO or the jumbo class is disabled.
/// - `gso`: consecutive replies of equal size to one peer in a send batch
///   (the last of a run may be shorter) go out as one message with a
///   UDP_SEGMENT control message, inside the same `sendmmsg`. If the kernel
///   refuses such a message (EIO, EINVAL) GSO is switched off for that loop
///   (logged once, counted) and the same replies are sent one by one:
///   nothing is lost.
///
/// - `receive_path::io_uring`: one multishot `recvmsg` per socket whose
///   buffers come from a provided-buffer ring of standard pool slots: every
///   datagram is still a pool binary, written there by the kernel, no copy.
///   Datagrams larger than a slot less ~110 bytes of kernel header, address
///   and control room are counted as `truncated`. The request is re-armed
///   when it ends (ring ran dry: counted). Falls back to `recvmmsg` when
///   io_uring, buffer rings or multishot recvmsg are unavailable (or mayfly
///   was built without liburing).
///
/// Endpoints are owned by the runtime (`udp_endpoint::open` attaches them),
/// so they outlive every handler that could reply through them.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <mayfly/actors/handler.hpp>
#include <mayfly/actors/ingress.hpp>
#include <mayfly/runtime/address.hpp>
#include <mayfly/runtime/result.hpp>

namespace mayfly {

class runtime;

namespace detail {
class io_loop;
} // namespace detail

/// How an endpoint's IO loops read datagrams.
enum class receive_path : uint8_t {
  /// `recvmmsg` into standard slots, one binary per datagram (default).
  recvmmsg,
  /// UDP GRO: coalesced datagrams of one peer land in one jumbo binary and
  /// are delivered as slices of it. See file comment.
  gro,
  /// io_uring multishot recvmsg with a provided-buffer ring of pool slots.
  /// See file comment.
  io_uring,
};

/// "recvmmsg", "gro" or "io_uring".
const char* to_string(receive_path p) noexcept;

/// Where a handler spawned for a datagram runs first.
enum class handler_start : uint8_t {
  /// On the IO thread that received the datagram, at once, until the
  /// handler finishes or waits for a message (`inline_runner`); later
  /// activations run on CAF's workers. No thread crossing for a handler
  /// that answers at once; a handler that computes long delays its loop's
  /// reading. Default.
  io_thread,
  /// On CAF's workers: the IO thread only enqueues the handler.
  workers,
};

/// "io_thread" or "workers".
const char* to_string(handler_start s) noexcept;

/// Configuration of one endpoint; the "net" section of a configuration file
/// holds the same fields (except `address`).
struct endpoint_config {
  /// Where to bind, e.g. 127.0.0.1:9000 or [::1]:9000.
  udp_address address;
  /// IO threads (one socket each, SO_REUSEPORT when > 1).
  uint32_t receive_threads = 1;
  /// Datagrams per recvmmsg / sendmmsg call.
  uint32_t batch = 32;
  /// SO_RCVBUF in bytes (SO_RCVBUFFORCE as root); 0: kernel default.
  uint32_t receive_buffer = 4u << 20;
  /// SO_SNDBUF in bytes; 0: kernel default.
  uint32_t send_buffer = 0;
  /// Replies queued per IO loop before replies are dropped.
  uint32_t reply_queue = 8192;
  /// Spin this long on an empty socket before sleeping (lower latency, more
  /// CPU). 0: sleep at once.
  uint32_t busy_poll_us = 0;
  /// Receive path asked for; the one in use (after fallback) is in the
  /// stats as "receive_path".
  mayfly::receive_path receive_path = mayfly::receive_path::recvmmsg;
  /// Send runs of equal-size replies to one peer with UDP GSO.
  bool gso = false;
  /// Where handlers run first (see `handler_start`).
  mayfly::handler_start handler_start = mayfly::handler_start::io_thread;
};

/// Parses the "net" section of a configuration document on top of
/// `defaults` (the address is not part of it).
result<endpoint_config> parse_endpoint_config(const nlohmann::json& doc,
                                              endpoint_config defaults = {});

/// A UDP port served by handler actors. See file comment.
class udp_endpoint final : public ingress {
public:
  /// Binds the sockets, starts the IO threads and attaches the endpoint to
  /// `rt` (which owns it from then on). Datagrams go to handlers of `type`.
  static result<udp_endpoint*> open(runtime& rt, handler_type& type,
                                    endpoint_config cfg);

  ~udp_endpoint() override;

  /// The bound address of the first socket (the real port after port 0).
  const udp_address& local_address() const noexcept {
    return local_;
  }

  std::string name() const override;
  void stop_receiving() noexcept override;
  void close() noexcept override;
  nlohmann::json stats() const override;

private:
  udp_endpoint(handler_type& type, endpoint_config cfg);

  handler_type* type_;
  endpoint_config cfg_;
  udp_address local_;
  std::vector<std::unique_ptr<detail::io_loop>> loops_;
};

} // namespace mayfly
