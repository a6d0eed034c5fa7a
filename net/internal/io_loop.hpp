#pragma once

// One IO thread of a udp_endpoint: a socket, its receive batch, its reply
// queue and its sender (not installed). See net/udp_endpoint.hpp.

#include <sys/socket.h>
#include <sys/uio.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include <mayfly/actors/datagram.hpp>
#include <mayfly/actors/handler.hpp>
#include <mayfly/actors/inline_runner.hpp>
#include <mayfly/net/internal/uring_receiver.hpp>
#include <mayfly/net/socket.hpp>
#include <mayfly/net/udp_endpoint.hpp>
#include <mayfly/runtime/bounded_queue.hpp>
#include <mayfly/runtime/counters.hpp>
#include <mayfly/runtime/writer.hpp>

namespace mayfly {
class runtime;
} // namespace mayfly

namespace mayfly::detail {

class io_loop final : public datagram_sink {
public:
  /// Counters written by the IO thread only (single writer, relaxed).
  enum io_counter : size_t {
    datagrams_in,
    bytes_in,
    recv_calls,
    recv_errors,
    truncated,
    spilled,
    large_drops,
    kernel_drops,
    policy_drops,
    paused,
    pool_waits,
    shutdown_drops,
    datagrams_out,
    bytes_out,
    send_calls,
    send_errors,
    send_blocked,
    polls,
    gro_receives,  // receives that held several coalesced datagrams
    gro_segments,  // datagrams that arrived in those
    gro_copied,    // lone small datagrams copied out of a jumbo slot
    gso_sends,     // messages sent with UDP_SEGMENT
    gso_segments,  // datagrams sent in those
    gso_errors,    // GSO messages the kernel refused (GSO then switched off)
    uring_rearms,       // multishot receives armed again after they ended
    uring_ring_empty,   // -ENOBUFS: the provided-buffer ring ran dry
    uring_refill_waits, // ring slots the standard pool could not give
    num_io_counters,
  };

  /// Counters written by worker threads (sharded).
  enum worker_counter : size_t {
    replies_queued,
    reply_queue_full,
    reply_no_buffer,
    reply_after_close,
    wakeups,
    num_worker_counters,
  };

  /// Uses GRO when `cfg` asks for it, the socket accepted UDP_GRO and the
  /// runtime has a jumbo class; io_uring when asked for and set up (on the
  /// IO thread, in `start()`); else recvmmsg (`fallback_reason()` says
  /// why). See `path()`.
  io_loop(runtime& rt, handler_type& type, const endpoint_config& cfg,
          udp_socket sock);
  ~io_loop() override;

  /// Starts the IO thread; returns once its receive path is set up.
  void start();
  void stop_receiving() noexcept;
  void close() noexcept;

  bool send(const udp_address& to, slice payload) noexcept override;
  bool send_copy(const udp_address& to, std::string_view bytes) noexcept override;

  int64_t io_count(io_counter c) const noexcept {
    return io_[c].load(std::memory_order_relaxed);
  }

  int64_t worker_count(worker_counter c) const noexcept {
    return workers_.sum(c);
  }

  const udp_socket& socket() const noexcept {
    return sock_;
  }

  /// The receive path in use (fixed at construction).
  receive_path path() const noexcept {
    return path_;
  }

  /// Why the configured receive path is not in use ("" when it is).
  const std::string& fallback_reason() const noexcept {
    return fallback_reason_;
  }

  /// Whether replies are sent with GSO now (false once the kernel refused).
  bool gso() const noexcept {
    return gso_.load(std::memory_order_relaxed);
  }

  /// The inline runner when handlers start on this loop's thread.
  const inline_runner* runner() const noexcept {
    return runner_ ? &*runner_ : nullptr;
  }

private:
  struct reply {
    udp_address to;
    slice payload;
  };

  struct alignas(64) packer_slot {
    std::mutex mtx;
    std::optional<send_packer> packer; // guarded by mtx
  };

  static constexpr size_t kPackerSlots = 64;
  static constexpr size_t kControlBytes = 64;
  // GRO: jumbo slots per recvmmsg (each holds up to 64 coalesced datagrams;
  // more would tie up the shared jumbo class).
  static constexpr size_t kGroBatch = 8;
  // GSO: at most this many segments and bytes per message (the kernel's
  // UDP_MAX_SEGMENTS was 64 before 6.x; 65507 is the IPv4 payload limit).
  static constexpr size_t kGsoMaxSegments = 64;
  static constexpr size_t kGsoMaxBytes = 65507;
  static constexpr size_t kSendControlBytes = CMSG_SPACE(sizeof(uint16_t));

  void map_spill() noexcept;
  void setup_receive() noexcept;
  void run() noexcept;
  bool receive_batch() noexcept;
  size_t read_control(msghdr& hdr) noexcept;
  void process(size_t i, int64_t now) noexcept;
  void process_gro(size_t i, int64_t now) noexcept;
  bool receive_uring() noexcept;
  void admit(datagram& d) noexcept;
  void deliver(datagram& d) noexcept;
  dispatch_status dispatch(datagram& d) noexcept;
  size_t fill_send() noexcept;
  void disable_gso(int err) noexcept;
  bool retry_held() noexcept;
  bool drain_replies() noexcept;
  bool flush_writer() noexcept;
  void idle(bool short_wait) noexcept;
  void wake() noexcept;
  void bump(io_counter c, int64_t n = 1) noexcept {
    io_[c].store(io_[c].load(std::memory_order_relaxed) + n,
                 std::memory_order_relaxed);
  }

  runtime* rt_;
  handler_type* type_;
  endpoint_config cfg_;
  udp_socket sock_;
  buffer_pools* pools_;
  bool drop_on_overload_;
  size_t slot_size_;
  size_t spill_size_;
  bool gro_ = false;           // receive path: GRO into jumbo slots
  size_t rbatch_ = 0;          // messages per recvmmsg
  receive_path path_;          // final once start() returned
  std::atomic<bool> gso_{false};
  size_t gso_max_segment_ = 0; // largest GSO segment (one MTU's payload)
  std::optional<inline_runner> runner_; // handler_start::io_thread
  std::unique_ptr<uring_receiver> uring_; // receive path: io_uring
  std::vector<uring_datagram> uevents_;
  std::string fallback_reason_;
  int event_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> running_{false};
  std::atomic<bool> receiving_{true};
  std::atomic<bool> sleeping_{false};
  std::atomic<bool> closed_{false};
  std::atomic<bool> receive_stopped_{false}; // the IO thread saw !receiving_
  bool blocked_ = false;   // last sendmmsg hit EAGAIN: wait for POLLOUT
  bool exhausted_ = false; // no slot for the next recvmmsg
  uint32_t last_ovfl_ = 0;

  // Receive batch: slot i holds datagram i; spill i catches its tail when
  // it is larger than a slot (copied into a jumbo binary then). With GRO,
  // slot i is a jumbo slot that may hold several datagrams, and no spill.
  std::vector<mmsghdr> rmsgs_;
  std::vector<iovec> riov_;
  std::vector<udp_address> rnames_;
  std::vector<char> rcontrol_;
  std::vector<mutable_buffer> slots_;
  std::byte* spill_ = nullptr; // batch * spill_size_ bytes, mmap'd
  std::vector<datagram> held_; // paused datagrams, in order
  size_t held_head_ = 0;

  // Send side.
  bounded_queue<reply> replies_;
  datagram_writer writer_;
  std::vector<mmsghdr> smsgs_;
  std::vector<iovec> siov_;
  std::vector<char> scontrol_;    // one UDP_SEGMENT cmsg per message
  std::vector<uint32_t> sdgrams_; // datagrams in message i
  std::unique_ptr<packer_slot[]> packers_;

  std::atomic<int64_t> io_[num_io_counters] = {};
  sharded_counters<num_worker_counters> workers_;
};

} // namespace mayfly::detail
