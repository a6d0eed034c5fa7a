#pragma once

/// @file
/// Handler actors: one short-lived CAF actor per datagram.
///
/// A service registers a *handler type* (a name and a function) with the
/// runtime; for every datagram the runtime spawns a fresh actor that calls
/// the function with a `handler_context` and the `datagram`:
///
/// ```cpp
/// auto& echo = rt.add_handler("echo", [](mayfly::handler_context& ctx,
///                                        const mayfly::datagram& d) {
///   ctx.reply(d.payload); // zero-copy: the reply is a slice of the request
/// });
/// ```
///
/// **Lifetime.** The actor owns an arena (leased before the spawn) and the
/// datagram. When the function returns, the actor exits, unless it is
/// awaiting responses (`ctx.self()->request(...).then(...)`) or set a
/// behavior (`ctx.self()->become(...)`) and is referenced by some other
/// actor: then it lives on until those are done or it calls
/// `ctx.self()->quit()` (CAF ends an actor nobody references). However it terminates — returning,
/// quitting, a request timing out, throwing, being killed — the arena is
/// reset and returned and the datagram reference dropped exactly once, on
/// the thread that ran it last (CAF's `on_exit`): the IO thread for a
/// handler that finished where it started (`inline_runner`), else a worker.
///
/// **Failure.** An exception escaping the function or a response handler
/// kills this actor alone: counted as `failed`, logged at most once per
/// second, its arena and slices released. Other handlers are unaffected.
///
/// **Bound.** At most `max_in_flight` handlers of a type are alive at once;
/// beyond that `runtime::dispatch` refuses (`dispatch_status::overloaded`) and
/// the network
/// layer applies the configured `overload_policy` (counted).
///
/// **Cost.** Per datagram: one CAF spawn of a class-based actor with the
/// payload as constructor argument (the cheapest pattern CAF 0.17.6 offers:
/// 3 allocations, all CAF's, served by mimalloc), no allocation by mayfly.
/// Statistics are sharded counters; admission takes a credit from an atomic
/// that only spawning threads touch, and reclaims finished handlers in bulk.
///
/// **Timing.** With latency histograms or the stall report on, each
/// activation reads the clock twice (start, end; the end read is the one
/// the lifetime statistic takes anyway when the handler finishes): they
/// feed the histograms (`handler_type::latency`) and the stall report
/// (`runtime_config::stall_threshold_ms`, actors/internal/stall_watchdog.hpp).

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/event_based_actor.hpp>
#include <nlohmann/json.hpp>

#include <mayfly/actors/barrier.hpp>
#include <mayfly/actors/config.hpp>
#include <mayfly/actors/datagram.hpp>
#include <mayfly/actors/detach_policy.hpp>
#include <mayfly/runtime/metrics.hpp>
#include <mayfly/runtime/arena.hpp>
#include <mayfly/runtime/counters.hpp>
#include <mayfly/runtime/latency_histogram.hpp>
#include <mayfly/runtime/log.hpp>

namespace mayfly {

class handler_context;
class runtime;

namespace detail {
class handler_actor;
class stall_watchdog;

/// The runtime's detach policy (defined with the runtime).
mayfly::detach_policy& detach_policy_of(runtime& rt) noexcept;

/// Whether a message argument of type `T` can pin a binary (the detach
/// policy looks at these).
template <class T>
constexpr bool may_pin_v = std::is_same<std::decay_t<T>, slice>::value
                           || std::is_same<std::decay_t<T>, key_batch>::value
                           || std::is_same<std::decay_t<T>, slice_batch>::value;

} // namespace detail

/// The user function of a handler type.
using handler_fn = std::function<void(handler_context&, const datagram&)>;

/// A per-source admission limit of one handler type: a token bucket per
/// source address prefix, checked where a datagram would become a handler
/// (docs/guide.md, "Limiting each source"). Off while `rate` is 0.
///
/// Each IO loop of an endpoint keeps its own table of `table_size` buckets,
/// allocated once when the endpoint opens: memory does not grow with the
/// number of sources, and the rate holds per loop per source (a source
/// whose datagrams the kernel spreads over n loops, e.g. from n source
/// ports under SO_REUSEPORT, can get up to n times `rate`). The eviction
/// rule is in net/internal/source_limiter.hpp.
struct source_limit_options {
  /// Accepted ranges (flags, configuration file and `check()` alike).
  static constexpr uint32_t max_rate = 10'000'000;
  static constexpr uint32_t max_burst = 1'000'000'000;
  static constexpr uint32_t min_table_size = 8;
  static constexpr uint32_t max_table_size = 1u << 24;

  /// Datagrams per second admitted per source prefix; 0: no limit.
  /// At most `max_rate` (the interval between datagrams is kept in whole
  /// nanoseconds: within 1% of the rate).
  uint32_t rate = 0;
  /// Datagrams a source may send at once after a quiet spell (the bucket's
  /// depth); 0: `default_burst(rate)`.
  uint32_t burst = 0;
  /// Leading bits of an IPv4 source that make its key, 0..32 (an
  /// IPv4-mapped IPv6 source counts as IPv4).
  uint8_t ipv4_prefix = 32;
  /// Leading bits of an IPv6 source that make its key, 0..128.
  uint8_t ipv6_prefix = 64;
  /// Buckets per IO loop, `min_table_size`..`max_table_size`; rounded up
  /// to a power of two.
  uint32_t table_size = 8192;

  bool enabled() const noexcept {
    return rate != 0;
  }

  /// The burst when none is given: a tenth of a second's worth, at least
  /// 10 (so that a client's few simultaneous queries pass at a low rate).
  static constexpr uint32_t default_burst(uint32_t rate) noexcept {
    return rate / 10 > 10 ? rate / 10 : 10;
  }

  /// `burst`, or its default.
  uint32_t effective_burst() const noexcept {
    return burst != 0 ? burst : default_burst(rate);
  }

  /// What is wrong with these values ("" when they are valid), naming the
  /// field, e.g. "ipv4_prefix: 33 is not in 0..32".
  std::string check() const;
};

/// Options of one handler type, given where it is added
/// (`runtime::add_handler(name, fn, options)`).
struct handler_options {
  /// Handlers of this type alive at once; 0: the runtime's `max_in_flight`.
  uint32_t max_in_flight = 0;
  /// How long `handler_context::ask` waits for an answer.
  std::chrono::milliseconds ask_timeout{1000};
  /// Sent to the peer when an `ask` fails (an error answer or no answer
  /// within `ask_timeout`); empty: the peer gets no reply.
  std::string error_reply;
  /// Per-source admission limit (off by default).
  source_limit_options source_limit;
  /// What the receive path does with a datagram for this type at its
  /// in-flight bound (or when no arena is left); unset: the runtime's
  /// `runtime_config::overload`.
  std::optional<overload_policy> overload;
  /// Where handlers of this type run first; unset: the endpoint's
  /// `endpoint_config::handler_start`.
  std::optional<handler_start> start;
  /// Most bytes one handler's arena hands out (as the pool's
  /// `arena_pool_config::max_arena_bytes`, at least one block's payload);
  /// 0: the pool's `max_arena_bytes`. Larger arenas take overflow blocks.
  size_t max_arena_bytes = 0;
};

// X(name, kind, unit, help): the raw counters of a handler type, declared
// once. The enum `handler_type::counter`, their keys in
// `handler_type::stats()` and their descriptions (`handler_metrics`:
// Prometheus TYPE/HELP, the docs/stats.md table "handlers") are derived from
// it. Derived figures (`finished`, `in_flight`, latencies, ...) are written
// out in handler.cpp.
#define MAYFLY_HANDLER_COUNTERS(X)                                             \
  X(spawned, counter, "", "handlers started")                                  \
  X(failed, counter, "", "handlers ended by an exception")                     \
  X(killed, counter, "", "handlers ended by an exit message (e.g. past the "   \
    "shutdown deadline)")                                                      \
  X(timed_out, counter, "", "handlers ended by a request of theirs that "      \
    "timed out without an error handler")                                      \
  X(rejected, counter, "", "datagrams dropped under `overload: drop` because " \
    "the in-flight bound (`max_in_flight`) was reached")                       \
  X(no_arena, counter, "", "datagrams dropped under `overload: drop` because " \
    "the arena pool had no block left. With the defaults (2048 arena blocks, " \
    "`max_in_flight` 4096) the arena pool runs out first, so overload drops "  \
    "land here; under `overload: pause` neither moves and the endpoint's "     \
    "`paused` does")                                                           \
  X(source_limited, counter, "", "datagrams refused by the per-source limit "  \
    "of this type (`handler_options::source_limit`); the same datagrams as "   \
    "the endpoints' `source_limit_drops`")                                     \
  X(lingered, counter, "", "handlers that outlived their function (awaiting " \
    "responses)")                                                              \
  X(replies, counter, "", "replies handed to an endpoint")                     \
  X(reply_drops, counter, "", "replies the endpoint refused (queue full, no "  \
    "buffer, closed)")                                                         \
  X(ask_errors, counter, "", "`handler_context::ask`s answered by an error "  \
    "or not answered within the type's `ask_timeout` (the handler then sent "  \
    "its `error_reply`, if any, and ended)")                                   \
  X(stalls, counter, "", "activations of this type that ran at least "         \
    "`runtime.stall_threshold_ms` (counted when they end; each also logs "     \
    "`stall: handler 'x' on thread 'T' (index N) ran for D ms`)")              \
  X(stall_reports, counter, "", "of those, the ones the watchdog reported "    \
    "while they were still running (`stall: handler 'x' on thread 'T' (tid "   \
    "N, index I) running for D ms`), once per activation")

/// A registered kind of handler: its function, in-flight bound and
/// statistics. Owned by the runtime; lives as long as the runtime.
/// Thread-safe.
class handler_type {
public:
  /// Counter ids of `count()`: the counters of `MAYFLY_HANDLER_COUNTERS`
  /// (each also a key of `stats()`), then the two that are not keys of
  /// their own: `exited` (handlers terminated, any way; `stats()` shows
  /// `finished`, derived from it) and `overflow_blocks` (arena overflow
  /// blocks taken by this type; `stats()` shows `arena.overflow_blocks`).
  enum counter : size_t {
#define MAYFLY_X(name, kind, unit, help) name,
    MAYFLY_HANDLER_COUNTERS(MAYFLY_X)
#undef MAYFLY_X
    exited,
    overflow_blocks,
    num_counters,
  };

  /// The latency histograms of a type (docs/stats.md, "Latency
  /// histograms"); all in nanoseconds, buckets `kLatencyBoundsUs`.
  enum latency : size_t {
    receive_to_start, ///< receipt (batch clock) → first activation starts
    run,              ///< time in activations, summed over the handler
    reply_to_kernel,  ///< reply made → sendmmsg returned with it
    num_latencies,
  };

  /// `options.max_in_flight` must be at least 1 here (the runtime fills in
  /// its default for 0).
  handler_type(std::string name, handler_fn fn, handler_options options);

  handler_type(const handler_type&) = delete;
  handler_type& operator=(const handler_type&) = delete;

  const std::string& name() const noexcept {
    return name_;
  }

  uint32_t max_in_flight() const noexcept {
    return options_.max_in_flight;
  }

  const handler_options& options() const noexcept {
    return options_;
  }

  /// Replaces the per-source limit (e.g. from a service's flags). Endpoints
  /// read it when they open: call it before opening one for this type.
  /// Not thread-safe. @pre `limit.check()` is empty.
  void source_limit(const source_limit_options& limit) noexcept {
    options_.source_limit = limit;
  }

  /// Tag marking the binaries of datagrams this type received (see
  /// `runtime::holder_tag`); 0 until the runtime assigns it.
  uint32_t holder_tag() const noexcept {
    return holder_tag_;
  }

  void holder_tag(uint32_t tag) noexcept {
    holder_tag_ = tag;
  }

  /// Handlers alive now (exact at the time of the call). Acquire: every
  /// message sent by a handler counted as exited is visible afterwards.
  int64_t in_flight() const noexcept {
    auto n = counters_.sum(spawned) - counters_.sum(exited);
    std::atomic_thread_fence(std::memory_order_acquire);
    return n;
  }

  /// Highest `in_flight()` observed (sampled whenever credits are reclaimed
  /// and whenever statistics are read).
  int64_t peak_in_flight() const noexcept;

  int64_t count(counter c) const noexcept {
    return counters_.sum(c);
  }

  /// Adds to counter `c` (the network layer counts its drops here too).
  void add(counter c, int64_t n = 1) noexcept {
    counters_.add(c, n);
  }

  /// Whether latency histograms are kept (`runtime_config::
  /// latency_histograms`): when false, nobody reads the clock for them.
  bool latency_on() const noexcept {
    return latency_on_;
  }

  /// Records one value of latency `which`. Any thread; O(1), relaxed
  /// sharded adds, no allocation. The network layer records
  /// `reply_to_kernel` here.
  void record_latency(latency which, int64_t ns) noexcept {
    latencies_[which].record(ns);
  }

  const latency_histogram& latency_of(latency which) const noexcept {
    return latencies_[which];
  }

  /// Longest activation counted in `stalls`, nanoseconds (0: none).
  int64_t stall_max_ns() const noexcept {
    return stall_max_ns_.load(std::memory_order_relaxed);
  }

  /// Statistics as JSON (docs/stats.md, "handlers").
  nlohmann::json stats() const;

  /// The epoch counters `handler_context::after_earlier` waits on
  /// (actors/barrier.hpp).
  order_gate& order() noexcept {
    return order_;
  }

private:
  // Admission and exit bookkeeping belong to the runtime and the handler
  // actor alone: a service cannot take or return credits, or call the
  // function outside an actor.
  friend class runtime;
  friend class detail::handler_actor;

  /// Takes an in-flight credit; false at the bound. Any thread. O(1): one
  /// CAS on an atomic only spawning threads touch; reclaims credits of
  /// finished handlers in bulk (O(kShards)) when they run out.
  bool try_admit() noexcept;

  /// Gives back a credit taken by `try_admit` for a handler that was never
  /// spawned (no arena could be had).
  void unadmit() noexcept;

  /// Records a handler's end. Any thread; sharded counters only.
  void record_exit(int64_t lifetime_ns, size_t arena_high_water,
                   uint32_t overflow_blocks) noexcept;

  /// Calls the user function.
  void invoke(handler_context& ctx, const datagram& d) const {
    fn_(ctx, d);
  }

  /// Logs a handler failure, at most once per second per type.
  rate_limited_log& failure_log() noexcept {
    return failure_log_;
  }

  bool reclaim() noexcept;
  void sample_peak() const noexcept;

  /// Counts an activation that ran `ns` >= the stall threshold and logs
  /// its final duration (not rate limited: one line per stall).
  void record_stall(int64_t ns) noexcept;

  std::string name_;
  handler_fn fn_;
  handler_options options_;
  uint32_t holder_tag_ = 0;
  order_gate order_;
  std::atomic<int64_t> credits_;
  std::mutex reclaim_mtx_;
  int64_t reclaimed_ = 0; // guarded by reclaim_mtx_: exits already credited
  mutable std::atomic<int64_t> peak_{0};
  sharded_counters<num_counters> counters_;
  log2_histogram lifetime_ns_;
  log2_histogram arena_bytes_;
  rate_limited_log failure_log_;
  // Timing (set by the runtime at add_handler, before any handler runs).
  bool latency_on_ = false;
  detail::stall_watchdog* watchdog_ = nullptr; // null: no stall report
  std::array<latency_histogram, num_latencies> latencies_;
  std::atomic<int64_t> stall_max_ns_{0};
};

/// What a handler function gets: its arena, its datagram, its actor.
/// Valid until the handler actor exits; usable only from the actor's own
/// callbacks (it is not thread-safe, like the actor itself).
class handler_context {
public:
  handler_context(caf::event_based_actor* self, handler_type* type,
                  runtime* rt, arena_lease lease, datagram d) noexcept
    : self_(self), type_(type), rt_(rt), arena_(std::move(lease)),
      datagram_(std::move(d)) {
  }

  handler_context(const handler_context&) = delete;
  handler_context& operator=(const handler_context&) = delete;

  /// The handler's arena: temporaries go here, gone when the handler exits.
  mayfly::arena& arena() noexcept {
    return arena_;
  }

  /// The datagram this handler was spawned for.
  const datagram& request() const noexcept {
    return datagram_;
  }

  /// The handler's CAF actor: send, request, spawn, become, quit.
  caf::event_based_actor* self() noexcept {
    return self_;
  }

  /// The runtime (pools, stats, long-lived actors).
  mayfly::runtime& runtime() noexcept {
    return *rt_;
  }

  handler_type& type() noexcept {
    return *type_;
  }

  /// Sends `payload` to the datagram's peer through the endpoint it came
  /// from, without copying. False (counted) if there is no endpoint or it
  /// refused. On the IO thread (a handler's first activation, by default)
  /// the reply goes straight into the loop's outgoing batch and leaves when
  /// the batch is sent, right after the handler; from a worker it crosses
  /// the endpoint's reply queue. The reply may reach the peer before the
  /// code after this call runs: do not let a peer's next request depend on
  /// later work here.
  bool reply(slice payload) noexcept {
    return count_reply(datagram_.source != nullptr
                       && datagram_.source->send(datagram_, std::move(payload),
                                                 host()));
  }

  /// Copies `bytes` (e.g. built in the arena) into a send buffer for the
  /// peer. False (counted) if there is no endpoint or it refused.
  bool reply(std::string_view bytes) noexcept {
    return count_reply(datagram_.source != nullptr
                       && datagram_.source->send_copy(datagram_, bytes,
                                                      host()));
  }

  /// Sends a message to another actor (`self()->send`), applying the
  /// detach policy to slices and batches sent to an actor marked long-lived
  /// (`runtime::mark_long_lived`, actors/detach_policy.hpp): small slices
  /// of large binaries are copied out. Other messages and destinations: no
  /// extra cost but, for a message with a slice, one relaxed load (or one
  /// table probe while some actor is marked).
  template <class Dest, class... Ts>
  void send(const Dest& dest, Ts&&... xs) {
    if constexpr ((detail::may_pin_v<Ts> || ...)) {
      auto& policy = detail::detach_policy_of(*rt_);
      if (auto tag = policy.holder_of(dest); tag != 0) {
        self_->send(dest, policy.prepare_argument(tag, std::forward<Ts>(xs))...);
        return;
      }
    }
    self_->send(dest, std::forward<Ts>(xs)...);
  }

  /// The pending answer of `ask`: give it what to do with the result.
  template <class Handle>
  class pending_answer {
  public:
    pending_answer(handler_context* ctx, Handle handle)
      : ctx_(ctx), handle_(std::move(handle)) {
    }

    /// Calls `on_result` with the answer (its parameters are the answer's
    /// types, as with CAF's `then`). If the answer is an error or does not
    /// come within the type's `ask_timeout`, the handler replies the type's
    /// `error_reply` (if any), counts `ask_errors` and ends.
    template <class F>
    void then(F on_result) const {
      auto* ctx = ctx_;
      handle_.then(std::move(on_result),
                   [ctx](caf::error&) { ctx->ask_failed(); });
    }

  private:
    handler_context* ctx_;
    Handle handle_;
  };

  /// Asks another actor and continues when it answers, e.g.
  /// `ctx.ask(db, key).then([&ctx](int v) { ctx.reply(...); })`: a CAF
  /// request with the handler type's `ask_timeout` and its `error_reply`
  /// on failure (see `pending_answer::then`). The handler stays alive
  /// until the answer comes; its arena and datagram stay valid meanwhile.
  /// Slices and batches asked of a long-lived actor go through the detach
  /// policy, as with `send`.
  template <class Dest, class... Ts>
  auto ask(const Dest& dest, Ts&&... xs) {
    caf::duration timeout{type_->options().ask_timeout};
    uint32_t tag = 0;
    if constexpr ((detail::may_pin_v<Ts> || ...))
      tag = detail::detach_policy_of(*rt_).holder_of(dest);
    if (tag != 0) {
      auto& policy = detail::detach_policy_of(*rt_);
      auto handle = self_->request(
        dest, timeout, policy.prepare_argument(tag, std::forward<Ts>(xs))...);
      return pending_answer<decltype(handle)>{this, std::move(handle)};
    }
    auto handle = self_->request(dest, timeout, std::forward<Ts>(xs)...);
    return pending_answer<decltype(handle)>{this, std::move(handle)};
  }

  /// Calls `f` (no arguments) once every handler of this type admitted
  /// before this call has exited, on any receive thread; their messages are
  /// then enqueued before anything `f` sends (actors/barrier.hpp). The
  /// handler stays alive meanwhile; if that takes longer than the type's
  /// `ask_timeout` (or the runtime stops), it fails like an `ask`: the
  /// `error_reply`, `ask_errors`, end. Call it at most once per handler.
  template <class F>
  void after_earlier(F f);

private:
  friend class detail::handler_actor;

  /// Starts waiting for earlier handlers: leaves this handler's own bucket
  /// (no query waits for another) and asks for a grace period. Returns its
  /// number. Defined in handler.cpp.
  uint64_t begin_after_earlier() noexcept;

  /// The runtime's barrier actor (actors/runtime.hpp).
  caf::actor barrier_actor();

  /// An `ask` failed: error reply, count, end.
  void ask_failed() noexcept {
    type_->add(handler_type::ask_errors);
    if (!type_->options().error_reply.empty())
      reply(std::string_view{type_->options().error_reply});
    self_->quit();
  }

  /// Ends the handler: resets and returns the arena, drops the datagram.
  /// Idempotent; only the handler actor calls it, from `on_exit` (a
  /// handler must not free the arena it is still running in).
  void release() noexcept {
    detail::release_arena(arena_);
    datagram_.payload.reset();
  }

  /// The execution unit this handler runs on now (the IO thread's inline
  /// runner during its first activation there, else a CAF worker).
  const caf::execution_unit* host() const noexcept {
    return self_ != nullptr ? self_->context() : nullptr;
  }

  bool count_reply(bool ok) noexcept {
    type_->add(ok ? handler_type::replies : handler_type::reply_drops);
    return ok;
  }

  caf::event_based_actor* self_;
  handler_type* type_;
  mayfly::runtime* rt_;
  mayfly::arena arena_;
  datagram datagram_;
  uint8_t order_bucket_ = 0;  // this handler's bucket in type().order()
  bool order_counted_ = false; // still counted there
};

/// The message a handler sends the runtime's barrier actor: answer `true`
/// once grace period `target` of `gate` has passed. Local only.
struct barrier_wait {
  order_gate* gate;
  uint64_t target;
};

template <class F>
void handler_context::after_earlier(F f) {
  auto target = begin_after_earlier();
  ask(barrier_actor(), barrier_wait{&type_->order(), target})
    .then([f = std::move(f)](bool) mutable { f(); });
}

/// What `handler_type::stats()` renders under "/handlers/{handler}"
/// (docs/stats.md, "handlers").
extern const metric_section handler_metrics;

} // namespace mayfly

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(mayfly::barrier_wait)
