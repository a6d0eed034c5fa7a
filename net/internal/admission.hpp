#pragma once

// `admission`: where a received datagram becomes a handler, the second
// stage of its life (not installed). See docs/design/net.md, "Admission".
//
//   receiver ──► admission ──► handler ──► replier ──► kernel
//                (this)
//
// For each datagram a receive path hands over, admission asks the runtime
// for a handler of the endpoint's type (`runtime::dispatch`: in-flight
// bound, arena lease, spawn). Where the handler starts is decided here: by
// default on this IO thread, at once (`inline_runner`), else on CAF's
// workers. When the type is at its bound (or no arena is left) the
// handler type's overload policy (else the runtime's) decides:
//
// - `pause`: the datagram is held, in order, with every later one of the
//   batch; the loop stops reading until the held ones are taken
//   (`retry_held`), so the kernel queues, then drops (counted by the
//   kernel, read through SO_MEMINFO);
// - `drop`: dropped and counted (`policy_drops`, and the type's `rejected`
//   or `no_arena`).
//
// Before all that, when the type has a per-source limit
// (`handler_options::source_limit`), the datagram's source is charged in
// this loop's `source_limiter`: a source over its rate is refused and
// counted (`source_limit_drops`, and the type's `source_limited`), and is
// neither held nor dispatched. The limiter's clock is the batch's receive
// time (`datagram::received_ns`), read once per receive.
//
// The loop reads nothing before the runtime is started (`accepting`), so
// datagrams that arrive before `runtime::start()` wait in the kernel rather
// than being read and dropped. A datagram read while the runtime stops is
// counted as `shutdown_drops`.
//
// Ownership: held datagrams (their binaries). Thread-safety: none (the IO
// thread), except the runner's statistics. Cost per datagram: one dispatch
// (a CAF spawn, and with `io_thread` the handler's first activation), and
// with a source limit one bucket lookup (O(8)); no allocation of its own
// while fewer than `max_held` datagrams are held.

#include <cstddef>
#include <optional>
#include <vector>

#include <mayfly/actors/datagram.hpp>
#include <mayfly/actors/inline_runner.hpp>
#include <mayfly/net/internal/io_counters.hpp>
#include <mayfly/net/internal/source_limiter.hpp>
#include <mayfly/net/udp_endpoint.hpp>

namespace caf {
class execution_unit;
} // namespace caf

namespace mayfly {
class handler_type;
class runtime;
} // namespace mayfly

namespace mayfly::detail {

/// See file comment.
class admission {
public:
  /// Datagrams go to handlers of `type`, replies to `source`. The overload
  /// policy and where handlers start are the type's (`handler_options`),
  /// else the runtime's policy and `endpoint_start`. `max_held`: room
  /// reserved for datagrams held while paused (one receive's worth).
  admission(runtime& rt, handler_type& type, handler_start endpoint_start,
            datagram_sink& source, io_counters& counters, size_t max_held);

  /// Whether the runtime takes datagrams yet (started, not stopping). The
  /// loop reads nothing until it does.
  bool accepting() const noexcept;

  /// Hands `d` to a new handler, or holds or drops it (see file comment).
  /// `d` is moved from unless dropped.
  void admit(datagram& d) noexcept;

  /// Whether datagrams are held (the loop then does not read).
  bool holding() const noexcept {
    return head_ < held_.size();
  }

  /// Offers the held datagrams again, in order; true when none is held any
  /// more.
  bool retry_held() noexcept;

  /// Drops what is held, counted as `shutdown_drops` (at close).
  void drop_held() noexcept;

  /// The execution unit handlers run on while they start on this thread
  /// (their replies go straight into the loop's outgoing batch); null with
  /// `handler_start::workers`.
  const caf::execution_unit* inline_host() const noexcept;

  /// The runner when handlers start on this thread, else null.
  const inline_runner* runner() const noexcept {
    return runner_ ? &*runner_ : nullptr;
  }

  /// The per-source limiter when the type has a limit, else null.
  const source_limiter* limiter() const noexcept {
    return limiter_ ? &*limiter_ : nullptr;
  }

private:
  dispatch_status dispatch(datagram& d) noexcept;

  runtime* rt_;
  handler_type* type_;
  datagram_sink* source_;
  io_counters* counters_;
  bool drop_on_overload_;
  std::optional<inline_runner> runner_;
  std::optional<source_limiter> limiter_;
  std::vector<datagram> held_; // paused datagrams, in order
  size_t head_ = 0;
};

} // namespace mayfly::detail
