#pragma once

/// @file
/// `udp_endpoint`: a UDP port served by handler actors.
///
/// Each endpoint runs `receive_threads` IO loops, each with its own socket
/// (SO_REUSEPORT when there are several) and its own thread. One datagram's
/// life on a loop (docs/design/net.md follows it file by file):
///
/// ```
///  kernel ──recvmmsg──► pool slot ──► admission ──► handler actor, run first
///  (socket)  (receiver)  = binary     (bound,       on this IO thread
///                                      pause/drop)        │ ctx.reply(...)
///                                                         ▼
///  kernel ◄──sendmmsg── replier: the loop's outgoing batch, grouped by
///   (GSO)               (peer, size) into UDP GSO messages
///                         ▲
///   replies from other threads (CAF workers): lock-free queue + eventfd
/// ```
///
/// **Where handlers run.** By default a handler's first activation runs on
/// the IO thread that received its datagram, at once (`inline_runner`):
/// what it does until it finishes or waits for a message; its replies go
/// straight into the loop's outgoing batch. Later activations run on CAF's
/// workers and reply through the loop's reply queue. `handler_start::
/// workers` hands every handler to the workers instead.
///
/// **Receive.** `recvmmsg` reads up to `batch` datagrams straight into
/// standard pool slots, one binary per datagram: no copy. A datagram larger
/// than a standard slot spills into a jumbo slot (one copy). A truncated
/// datagram (MSG_TRUNC) is counted and dropped, never delivered as if
/// whole. Zero-length datagrams are valid. When the standard pool is
/// exhausted the loop stops reading until slots come back (the kernel
/// queues, then drops; its drop counter is read with SO_MEMINFO). When the
/// handler type is at its in-flight bound, the runtime's `overload_policy`
/// decides: `pause` holds the batch and stops reading; `drop` drops and
/// counts. Nothing is read before the runtime is started: datagrams that
/// arrive earlier wait in the kernel.
///
/// **Send.** Replies (`reply(slice)`: no copy; `reply(bytes)`: one copy into
/// a packed send buffer) leave in `sendmmsg` batches right after the
/// handlers of a receive batch ran; a lone reply from a worker wakes a
/// sleeping loop (eventfd). Replies of one batch to one peer with one size
/// go out as one UDP GSO message where the kernel has GSO (a refusal turns
/// it off for that loop, nothing lost). EAGAIN waits for POLLOUT; other
/// errors are retried or drop that datagram, each counted under its reason.
/// A full reply queue drops a worker's reply (counted); a worker never
/// blocks.
///
/// **Idle.** While traffic is steady the loop polls for up to
/// `busy_poll_us` before sleeping (a wake-up costs more than a datagram);
/// when it is not, it sleeps at once. After 50 ms without work it gives
/// back the slots it holds ready, so an idle endpoint holds no pool slot.
///
/// **Optional receive paths** (`endpoint_config::receive_path`), each
/// detected when the endpoint opens, with a log line naming the path in use
/// and a clean fallback to the default:
///
/// - `receive_path::gro`: UDP_GRO on the socket. `recvmmsg` reads into
///   jumbo slots (64 KiB); a receive that coalesced several datagrams of one
///   peer (the sender used GSO) becomes ONE binary, and each datagram is
///   handed to its own handler as a slice of it (one refcount shared by
///   all, no copy). A lone datagram that fits a standard slot is copied
///   into one, so ordinary traffic does not pin 64 KiB per datagram.
/// - `receive_path::io_uring`: one multishot `recvmsg` per socket whose
///   buffers come from a provided-buffer ring of standard pool slots: every
///   datagram is still a pool binary, written there by the kernel, no copy.
///   Datagrams larger than a slot less ~50 bytes of kernel header and
///   address are counted as `truncated`.
///
/// **Shutdown.** `stop_receiving` stops reading; `close` sends the last
/// replies the socket takes and counts what is left: replies
/// (`shutdown_reply_drops`), held datagrams (`shutdown_drops`) and what the
/// kernel still queued for the socket (`left_in_kernel_at_close`).
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
#include <mayfly/actors/address.hpp>
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
  /// Adaptive polling: while traffic is steady (work came back within this
  /// many microseconds after the loop last ran out of it), an idle loop
  /// polls for up to this long before sleeping; otherwise it sleeps at
  /// once. Lower latency (no wake-up) for CPU while traffic flows; nothing
  /// when idle. 0: always sleep at once.
  uint32_t busy_poll_us = 200;
  /// Receive path asked for; the one in use (after fallback) is in the
  /// stats as "receive_path".
  mayfly::receive_path receive_path = mayfly::receive_path::recvmmsg;
  /// Send the replies of one batch that go to one peer with one size as a
  /// single UDP GSO message (on where the kernel has GSO; a kernel that
  /// refuses a send switches it off for that loop, nothing lost).
  bool gso = true;
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
  void start_receiving() noexcept override;
  void stop_receiving() noexcept override;
  void close() noexcept override;
  nlohmann::json stats() const override;
  /// `udp_endpoint_metrics`.
  std::vector<metric_section> stats_sections() const override;

private:
  udp_endpoint(handler_type& type, endpoint_config cfg);

  handler_type* type_;
  endpoint_config cfg_;
  udp_address local_;
  std::vector<std::unique_ptr<detail::io_loop>> loops_;
};

/// What `udp_endpoint::stats()` renders under "/net/{endpoint}"
/// (docs/stats.md, "net"); the IO loop's counters come from
/// net/internal/io_counters.hpp.
extern const metric_section udp_endpoint_metrics;

} // namespace mayfly
