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
/// handler type is at its in-flight bound, its `overload_policy`
/// (`handler_options::overload`, else the runtime's) decides: `pause` holds the batch and stops reading; `drop` drops and
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
/// **CPU steering** (`steering::cpu`, with `receive_threads` > 1): a
/// classic BPF program on the SO_REUSEPORT group picks socket "CPU of the
/// receive softirq mod receive_threads", and each loop's thread is pinned
/// to such a CPU, so a datagram is read on the CPU that took its packet
/// (net/internal/steering.hpp). Where the kernel refuses the program or the
/// pinning, the kernel's hash spreads datagrams as without steering; one
/// log line and the "steering" statistic say why.
///
/// **Shutdown and hand-over.** `drain_kernel_queue` (first thing in
/// `runtime::stop()`) makes every socket leave the port: it is connected to
/// its own address, which no client sends from, so the kernel stops
/// queueing new datagrams to it (they go to the other sockets of the port,
/// e.g. a successor process's with `reuse_port`, or are refused) while
/// what it already queued stays and is read, answered and counted as
/// `drained_at_stop`. Then `stop_receiving` stops reading; `close` sends
/// the last replies the socket takes and counts what is left: replies
/// (`shutdown_reply_drops`), held datagrams (`shutdown_drops`) and what the
/// kernel still queued for the socket (`left_in_kernel_at_close`, 0 after a
/// complete drain). docs/guide.md, "Restarting without losing datagrams",
/// has the operator's procedure and the kernel behaviour it relies on.
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

/// Which socket of an endpoint's SO_REUSEPORT group reads a datagram.
enum class steering : uint8_t {
  /// The kernel's hash of the peer's address and port (default).
  off,
  /// The socket of the CPU that took the packet; threads pinned. See file
  /// comment.
  cpu,
};

/// "off" or "cpu".
const char* to_string(steering s) noexcept;

/// Configuration of one endpoint; the "net" section of a configuration file
/// holds the same fields (except `address`).
struct endpoint_config {
  /// Where to bind, e.g. 127.0.0.1:9000 or [::1]:9000. A wildcard (0.0.0.0
  /// or [::]) receives on every local address, and each reply leaves from
  /// the address its request arrived at (IP_PKTINFO / IPV6_PKTINFO).
  udp_address address;
  /// An [::] (or other IPv6) address also receives IPv4, v4-mapped
  /// (IPV6_V6ONLY off). Off: IPv6 only.
  bool dual_stack = false;
  /// IO threads (one socket each, SO_REUSEPORT when > 1).
  uint32_t receive_threads = 1;
  /// SO_REUSEPORT even with one thread: another process of the same user
  /// can bind the port too, e.g. the successor in a restart without a gap.
  bool reuse_port = false;
  /// Which thread reads a datagram when there are several (`steering`).
  mayfly::steering steering = mayfly::steering::off;
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
  /// Where handlers run first (see `handler_start`): the default for handler
  /// types whose `handler_options::start` is not set.
  mayfly::handler_start handler_start = mayfly::handler_start::io_thread;
};

/// Parses the "net" section of a configuration document on top of
/// `defaults` (the address is not part of it).
result<endpoint_config> parse_endpoint_config(const nlohmann::json& doc,
                                              endpoint_config defaults = {});

/// Parses the "source_limit" object of the "net" section (fields as in
/// `source_limit_options`: "rate", "burst", "ipv4_prefix", "ipv6_prefix",
/// "table_size") on top of `defaults`. It is a handler type's option: a
/// service applies it to the type its endpoint serves (`serve` does).
result<source_limit_options>
parse_source_limit_config(const nlohmann::json& doc,
                          source_limit_options defaults = {});

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
  /// Leaves the port and dispatches what the kernel queued (file comment);
  /// returns when every loop found its socket empty, or after
  /// `deadline_ms`.
  void drain_kernel_queue(int64_t deadline_ms) noexcept override;
  void stop_receiving() noexcept override;
  void close() noexcept override;
  nlohmann::json stats() const override;
  /// `udp_endpoint_metrics`.
  std::vector<metric_section> stats_sections() const override;

private:
  udp_endpoint(handler_type& type, endpoint_config cfg);
  void steer_to_cpus();

  handler_type* type_;
  endpoint_config cfg_;
  udp_address local_;
  std::vector<std::unique_ptr<detail::io_loop>> loops_;
  /// "cpu", "off", or "off: why" when steering was asked for and refused.
  std::string steering_;
};

/// What `udp_endpoint::stats()` renders under "/net/{endpoint}"
/// (docs/stats.md, "net"); the IO loop's counters come from
/// net/internal/io_counters.hpp.
extern const metric_section udp_endpoint_metrics;

} // namespace mayfly
