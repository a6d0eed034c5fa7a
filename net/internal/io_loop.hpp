#pragma once

// `io_loop`: one IO thread of a udp_endpoint, which only sequences the
// stages of a datagram's life (not installed). See docs/design/net.md,
// "The IO loop".
//
//   receiver ──► admission ──► handler ──► replier ──► kernel
//   receiver.hpp admission.hpp             replier.hpp
//                                  ▲
//          other threads' replies: reply_queue.hpp (+ waker.hpp)
//
// Each round: read one batch (`receiver`, which hands every datagram to
// `admission`, which starts its handler, by default right here); move the
// replies other threads queued into the outgoing batch; send the batch
// (`replier`: inline replies are already in it). With nothing to do, the
// loop polls for a while if traffic is steady (adaptive, bounded by
// `busy_poll_us`), else sleeps in poll() until the socket, a replying
// thread or a stop wakes it; after 50 ms without work it gives back the
// pool slots it holds ready (receive slots, partly filled send buffers), so
// an idle endpoint holds none.
//
// The loop reads nothing before the runtime is started, so datagrams sent
// early wait in the kernel (`udp_endpoint::start_receiving` wakes it).
//
// Ownership: the socket, every stage, the thread. Thread-safety: the loop
// implements `datagram_sink` (any thread); `start`, `start_receiving`,
// `stop_receiving`, `close` from the controlling thread; statistics from
// any thread.

#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include <mayfly/actors/datagram.hpp>
#include <mayfly/net/internal/admission.hpp>
#include <mayfly/net/internal/io_counters.hpp>
#include <mayfly/net/internal/receiver.hpp>
#include <mayfly/net/internal/replier.hpp>
#include <mayfly/net/internal/reply_queue.hpp>
#include <mayfly/net/internal/socket_calls.hpp>
#include <mayfly/net/internal/waker.hpp>
#include <mayfly/net/socket.hpp>
#include <mayfly/net/udp_endpoint.hpp>

namespace mayfly {
class handler_type;
class runtime;
} // namespace mayfly

namespace mayfly::detail {

/// See file comment.
class io_loop final : public datagram_sink {
public:
  io_loop(runtime& rt, handler_type& type, const endpoint_config& cfg,
          udp_socket sock);
  ~io_loop() override;

  /// Starts the IO thread; returns once its receive path is set up.
  void start();
  /// The runtime started: read from now on.
  void start_receiving() noexcept;
  void stop_receiving() noexcept;
  void close() noexcept;

  /// Stop: the socket has left the port (`udp_socket::leave_port`, done by
  /// the endpoint, or not when `left` is false); read what the kernel
  /// queued until the socket is found empty at least kDetachGraceMs after
  /// the request (a datagram the kernel was delivering as the socket left
  /// still lands), then `drained()` turns true. Reading goes on normally
  /// until `stop_receiving`. Without `left`, or before the runtime runs,
  /// nothing is drained: `drained()` at once.
  void begin_drain(bool left) noexcept;

  /// `udp_socket::leave_port` on the loop's socket (controlling thread).
  result<bool> leave_port() noexcept {
    return sock_.leave_port();
  }
  bool drained() const noexcept {
    return drained_.load(std::memory_order_acquire);
  }

  /// The IO thread (for pinning; valid after `start`).
  pthread_t native_thread() noexcept {
    return thread_.native_handle();
  }

  /// The CPU the IO thread is pinned to, -1: not pinned (statistics).
  int pinned_cpu() const noexcept {
    return pinned_cpu_.load(std::memory_order_relaxed);
  }
  void set_pinned_cpu(int cpu) noexcept {
    pinned_cpu_.store(cpu, std::memory_order_relaxed);
  }

  bool send(const datagram& request, slice payload,
            const caf::execution_unit* caller) noexcept override;
  bool send_copy(const datagram& request, std::string_view bytes,
                 const caf::execution_unit* caller) noexcept override;

  const io_counters& counters() const noexcept {
    return counters_;
  }

  const reply_queue& replies() const noexcept {
    return queue_;
  }

  const udp_socket& socket() const noexcept {
    return sock_;
  }

  /// The receive path in use (final once `start()` returned).
  receive_path path() const noexcept {
    return path_;
  }

  /// Why the configured receive path is not in use ("" when it is).
  const std::string& fallback_reason() const noexcept {
    return fallback_reason_;
  }

  /// What this loop's send buffers took: the replier's packer (replies
  /// copied on the IO thread) and the reply queue's (on other threads).
  /// Any thread.
  send_packer_counts packed() const noexcept {
    auto c = replier_.packed();
    c += queue_.packed();
    return c;
  }

  /// Whether replies are sent with GSO now.
  bool gso() const noexcept {
    return replier_.gso();
  }

  /// The inline runner when handlers start on this loop's thread.
  const inline_runner* runner() const noexcept {
    return admission_.runner();
  }

  /// The per-source limiter when the handler type has a limit, else null.
  const source_limiter* limiter() const noexcept {
    return admission_.limiter();
  }

  /// The current adaptive polling budget (statistics).
  int64_t spin_budget_ns() const noexcept {
    return spin_budget_ns_.load(std::memory_order_relaxed);
  }

private:
  void run() noexcept;
  bool send_replies() noexcept;
  void idle(bool short_wait, bool want_read) noexcept;
  void note_work() noexcept;
  void release_idle() noexcept;
  void drain_step(recv_status status, int64_t before) noexcept;

  runtime* rt_;
  endpoint_config cfg_;
  udp_socket sock_;
  const socket_calls* calls_;
  io_counters counters_;
  waker waker_;
  admission admission_;
  replier replier_;
  reply_queue queue_;
  std::unique_ptr<receiver> receiver_; // made on the IO thread
  receive_path path_;
  bool timed_; // stamp replies for the reply → kernel histogram
  std::string fallback_reason_;
  std::thread thread_;
  std::atomic<bool> running_{false};
  std::atomic<bool> receiving_{true};
  std::atomic<bool> receive_stopped_{false}; // the IO thread saw !receiving_
  std::atomic<bool> closed_{false};
  std::atomic<int> pinned_cpu_{-1};

  // Drain at stop (begin_drain): requested by the controlling thread, done
  // when the IO thread found the socket empty after the grace period.
  static constexpr int64_t kDetachGraceMs = 10;
  std::atomic<bool> drain_requested_{false};
  std::atomic<bool> drained_{false};
  int64_t drain_since_ns_ = 0; // IO thread: when it first saw the request

  // Idle: after kQuietMs without work the loop gives back what it holds
  // ready (receive slots, partly filled send buffers) before sleeping on.
  static constexpr int kQuietMs = 50;
  bool quiet_ = false; // released since the last work

  // Adaptive polling (IO thread; the budget is also read by statistics).
  int64_t idle_since_ns_ = 0; // when the loop last ran out of work; 0: busy
  int64_t spin_until_ns_ = 0; // end of the current spin; 0: not spinning
  std::atomic<int64_t> spin_budget_ns_{0};
};

} // namespace mayfly::detail
