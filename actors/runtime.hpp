#pragma once

/// @file
/// `mayfly::runtime`: the object a service embeds.
///
/// It owns the CAF actor system (or borrows the service's own), the buffer
/// pools, the arena pool, the stats registry and the registered handler
/// types. Network endpoints (net/) attach to it and call `dispatch` for every
/// datagram.
///
/// ```cpp
/// auto rt = mayfly::runtime::make(cfg);          // pools, CAF system
/// if (!rt) { report(rt.error().message()); }
/// auto totals = (*rt)->spawn(aggregator);         // long-lived CAF actor
/// auto& h = (*rt)->add_handler("ingest", fn);     // handler type
/// (*rt)->start();                                 // before any endpoint
/// auto ep = mayfly::udp_endpoint::open(**rt, h, net_cfg); // net/
/// (*rt)->run();                                   // until SIGINT/SIGTERM
/// ```
///
/// **Two ways to run.** `run()` owns the calling thread until a termination
/// signal or `request_stop()`; `start()`/`stop()` fit a service that has its
/// own main loop and threads. A runtime can also borrow a service's existing
/// `caf::actor_system` (`make(cfg, system)`): it then never stops or waits
/// for actors it did not spawn.
///
/// **Distribution.** The runtime registers its buffer pools with its actor
/// system, so that slices sent by other nodes (CAF's middleman) arrive in
/// fresh binaries from these pools (actors/messages.hpp). An owned system
/// announces mayfly's message types and needs only CAF's core; set
/// `runtime_config::configure_caf` to load the io module. A borrowed system
/// must announce them itself (`add_message_types`) and should stop its
/// middleman traffic before the runtime is destroyed.
///
/// **Shutdown** (`stop()`, also from the destructor; a second call is
/// harmless): drain ingress (every endpoint `attach`ed takes no new
/// datagram from the kernel and dispatches what it had queued, up to
/// `shutdown_deadline_ms`) → stop ingress (it stops receiving) →
/// wait up to `shutdown_deadline_ms` for in-flight handlers → kill the rest
/// (counted) → send `user_shutdown` to long-lived actors spawned through
/// `spawn` → drop their handles → wait for them (`await_all_actors_done` on
/// an owned system) → check balances. `balance()` is then all zero unless a
/// slice escaped to code outside the runtime's actors; the runtime says so
/// on stderr and keeps its pools mapped rather than let a slice dangle.
///
/// **Threads.** `dispatch`, `spawn`, `request_stop`, `balance`, and
/// `collect_stats` may be called from any thread. `start`, `stop`, `run`
/// and `add_handler` from one controlling thread.

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <nlohmann/json.hpp>

#include <mayfly/actors/config.hpp>
#include <mayfly/actors/datagram.hpp>
#include <mayfly/actors/detach_policy.hpp>
#include <mayfly/actors/errors.hpp>
#include <mayfly/actors/handler.hpp>
#include <mayfly/actors/ingress.hpp>
#include <mayfly/runtime/arena.hpp>
#include <mayfly/runtime/buffer_pool.hpp>
#include <mayfly/runtime/stats_registry.hpp>
#include <mayfly/runtime/user_metrics.hpp>

namespace mayfly {

namespace detail {
class handler_actor;
class stall_watchdog;

/// Tag of the test-only `runtime::make` overload (tests/support/
/// small_runtime.hpp): the runtime's actors run on CAF's deterministic test
/// coordinator; nothing runs until the test steps it.
struct testing_scheduler_t {};
} // namespace detail

/// Outstanding resources; all zero after a clean `stop()`.
struct balance_report {
  int64_t buffers_out = 0;   ///< pool slots plus dedicated binaries held
  int64_t arenas_out = 0;    ///< arenas alive
  int64_t arena_blocks = 0;  ///< arena blocks out of the pool
  int64_t slices_live = 0;   ///< live slices, process-wide
  int64_t handlers = 0;      ///< handlers in flight, all types

  bool zero() const noexcept {
    return buffers_out == 0 && arenas_out == 0 && arena_blocks == 0
           && slices_live == 0 && handlers == 0;
  }

  nlohmann::json to_json() const;
};

/// What `dispatch` did with a datagram.
enum class dispatch_status : uint8_t {
  spawned,     ///< a handler took it (the datagram was moved from)
  overloaded,  ///< the handler type is at max_in_flight (datagram untouched)
  no_arena,    ///< the arena pool is exhausted (datagram untouched)
  not_running, ///< the runtime is stopping or stopped (datagram untouched)
};

/// The embeddable runtime. See file comment.
class runtime {
public:
  /// Creates pools and an owned CAF actor system. Fails with a message that
  /// names the invalid field.
  static result<std::unique_ptr<runtime>> make(runtime_config cfg);

  /// Tests only: as `make(cfg)` on CAF's deterministic test coordinator.
  static result<std::unique_ptr<runtime>> make(runtime_config cfg,
                                               detail::testing_scheduler_t);

  /// Creates pools and borrows `system` (which must outlive the runtime).
  /// `workers` and `max_throughput` are then the system's business and
  /// ignored.
  static result<std::unique_ptr<runtime>> make(runtime_config cfg,
                                               caf::actor_system& system);

  /// Stops (see `stop`), then releases the pools.
  ~runtime();

  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  // -- lifecycle --------------------------------------------------------------

  /// Lets endpoints dispatch. Idempotent.
  void start();

  /// Graceful, complete shutdown (see file comment). Idempotent.
  void stop();

  /// `start()`, then blocks until a termination signal (SIGINT, SIGTERM) or
  /// `request_stop()`, then `stop()`. Call `block_termination_signals()`
  /// first thing in `main` so that the signals reach this thread.
  void run();

  /// Makes `run()` return. Any thread (not a signal handler).
  void request_stop() noexcept;

  bool running() const noexcept {
    return state_.load(std::memory_order_acquire) == state::running;
  }

  // -- handlers ---------------------------------------------------------------

  /// Registers a handler type named `name` (unique) with the configured
  /// `max_in_flight`. The returned reference lives as long as the runtime.
  handler_type& add_handler(std::string name, handler_fn fn);

  /// As above with its own in-flight bound.
  handler_type& add_handler(std::string name, handler_fn fn,
                            uint32_t max_in_flight);

  /// As above with the type's own options (`handler_options`); fields left
  /// at 0 take the runtime's defaults.
  handler_type& add_handler(std::string name, handler_fn fn,
                            handler_options options);

  /// Spawns a handler of `type` for `d`. Any thread; ~1 us of the calling
  /// thread. Moves from `d` only when it returns `spawned`; otherwise the
  /// caller decides (drop or retry: `overload_policy`) and counts. `host`:
  /// the CAF execution unit the handler is launched on (`inline_runner`);
  /// nullptr: CAF's scheduler picks a worker.
  dispatch_status dispatch(handler_type& type, datagram& d,
                           caf::execution_unit* host = nullptr) noexcept;

  /// Handlers in flight over all types.
  int64_t in_flight() const noexcept;

  /// The actor that answers `barrier_wait` (`handler_context::
  /// after_earlier`, actors/barrier.hpp); spawned at first use, a
  /// long-lived actor. An invalid handle once the runtime stops. Any
  /// thread.
  caf::actor barrier();

  // -- long-lived actors -------------------------------------------------------

  /// Spawns a long-lived actor (any CAF spawn form); it is told to exit with
  /// `user_shutdown` at `stop()`.
  template <class... Ts>
  auto spawn(Ts&&... xs) {
    auto handle = system_->spawn(std::forward<Ts>(xs)...);
    track(caf::actor_cast<caf::actor>(handle));
    return handle;
  }

  /// As `spawn` for a class-based actor `T`.
  template <class T, class... Ts>
  auto spawn(Ts&&... xs) {
    auto handle = system_->template spawn<T>(std::forward<Ts>(xs)...);
    track(caf::actor_cast<caf::actor>(handle));
    return handle;
  }

  // -- pinning report -----------------------------------------------------------

  /// A tag naming a holder of binaries in the statistics ("which handler
  /// type or actor holds the oldest live binary"). Handler types get one at
  /// `add_handler` and tag every datagram they receive; a long-lived actor
  /// that keeps slices registers a name here and marks what it keeps with
  /// `slice::mark_holder(tag)`. Tags are never reused. Any thread.
  uint32_t holder_tag(std::string name);

  /// The name registered for `tag` ("" for 0 or unknown).
  std::string holder_name(uint32_t tag) const;

  /// Marks `actor` long-lived, as the holder `name` (a new holder tag, which
  /// it returns): slices that mayfly's send paths (`handler_context::send`
  /// and `ask`, `fanout`, `batcher`) send to it from now on go through the
  /// detach policy (actors/detach_policy.hpp, `runtime_config::detach`),
  /// and binaries it is sent as they are are attributed to `name` in the
  /// top-holders report. The mark goes when the actor exits (an exit hook:
  /// one allocation, here). Returns 0, and marks nothing, for an invalid
  /// handle or when `detach_policy::kMaxLongLived` actors are marked
  /// (counted as `detach.mark_refused`). Any thread.
  uint32_t mark_long_lived(const caf::actor& actor, std::string name);

  /// As above with an existing tag (`holder_tag`), so that several actors
  /// (the members of a supervised group, a restarted actor) count as one
  /// holder. False when nothing was marked.
  bool mark_long_lived(const caf::actor& actor, uint32_t tag);

  /// The detach policy and the table of long-lived actors.
  mayfly::detach_policy& detach() noexcept {
    return *detach_;
  }

  // -- ingress ----------------------------------------------------------------

  /// Takes ownership of `source` (a UDP endpoint, the stats endpoint): its
  /// statistics appear under "/net/<name>", and `stop()` stops and closes it
  /// (see actors/ingress.hpp). Returns a reference valid as long as the
  /// runtime.
  ingress& attach(std::unique_ptr<ingress> source);

  // -- resources --------------------------------------------------------------

  caf::actor_system& system() noexcept {
    return *system_;
  }

  buffer_pools& buffers() noexcept {
    return *buffers_;
  }

  arena_pool& arenas() noexcept {
    return *arenas_;
  }

  stats_registry& stats() noexcept {
    return stats_;
  }

  const stats_registry& stats() const noexcept {
    return stats_;
  }

  // -- user statistics (runtime/user_metrics.hpp) -------------------------------

  /// Declares a counter that appears as "/counters/<name>" in the
  /// statistics and as `mayfly_counters_<name>_total` in /metrics, with
  /// `help` as its HELP text: `rt.counter("lines", "syslog lines received",
  /// "lines")`. The handle's `add` costs one relaxed add, any thread. A bad
  /// or duplicate name is an `errc::invalid_config` error naming it. Any
  /// thread; allocates (declare at start-up).
  result<user_counter> counter(std::string_view name, std::string_view help,
                               std::string_view unit = "") {
    return user_.counter(name, help, unit);
  }

  /// As `counter`, for a gauge ("/gauges/<name>", `mayfly_gauges_<name>`).
  result<user_gauge> gauge(std::string_view name, std::string_view help,
                           std::string_view unit = "") {
    return user_.gauge(name, help, unit);
  }

  const runtime_config& config() const noexcept {
    return cfg_;
  }

  /// Outstanding resources now (see `balance_report`).
  balance_report balance() const noexcept;

  /// The whole statistics document (docs/stats.md).
  nlohmann::json collect_stats() const {
    return stats_.collect();
  }

  /// Whether the test coordinator drives this runtime's actors.
  bool testing() const noexcept {
    return testing_ && owned_system_ != nullptr;
  }

private:
  friend class detail::handler_actor;

  /// Registers a handler that outlived its function (awaits responses), so
  /// that `stop()` can kill it after the deadline. No allocation. Called by
  /// the handler actor only.
  void track_lingering(detail::handler_actor* h) noexcept;

  /// Unregisters it (its `on_exit` or destructor). Idempotent.
  void untrack_lingering(detail::handler_actor* h) noexcept;

  enum class state : uint8_t { created, running, stopping, stopped };

  explicit runtime(runtime_config cfg);
  static result<std::unique_ptr<runtime>> make_owned(runtime_config cfg,
                                                     bool testing);
  std::optional<error_info> init_memory();
  void attach_pools();
  void init_stats();
  void track(caf::actor handle);
  /// Lets actors make progress: runs the test coordinator, or sleeps 1 ms.
  void drive();
  bool wait_until(const std::function<bool()>& done, int64_t deadline_ms);
  void kill_lingering();
  void stop_long_lived();
  nlohmann::json runtime_stats() const;
  nlohmann::json binaries_stats() const;
  nlohmann::json detach_stats() const;
  nlohmann::json holders_stats() const;

  runtime_config cfg_;
  bool testing_ = false; // on CAF's test coordinator (tests only)
  std::atomic<state> state_{state::created};
  int64_t started_ns_ = 0;

  // Declaration order is destruction order in reverse: pools outlive the
  // actor system (actors release binaries and arenas while it shuts down).
  std::unique_ptr<buffer_pools> buffers_;
  std::unique_ptr<arena_pool> arenas_;
  stats_registry stats_;
  // Outlives every thread that runs handlers (endpoints, the actor system):
  // their activations publish into it. Null: stall report off.
  std::unique_ptr<detail::stall_watchdog> watchdog_;
  user_metrics user_{stats_}; // unregisters from stats_ first
  std::deque<handler_type> handlers_;
  std::vector<std::unique_ptr<ingress>> ingresses_; // mtx_ for adding
  std::unique_ptr<caf::actor_system_config> system_cfg_;
  std::unique_ptr<caf::actor_system> owned_system_;
  caf::actor_system* system_ = nullptr;
  bool pools_attached_ = false; // our pools receive remote slices

  std::mutex mtx_;
  std::vector<caf::actor> long_lived_;                          // mtx_

  // Shared with the exit hooks of marked actors (which may outlive us).
  std::shared_ptr<mayfly::detach_policy> detach_;
  std::mutex barrier_mtx_;
  caf::actor barrier_; // barrier_mtx_

  mutable std::mutex holders_mtx_;
  std::vector<std::string> holders_; // holders_mtx_; tag i+1 is holders_[i]

  std::mutex lingering_mtx_;
  detail::handler_actor* lingering_ = nullptr; // intrusive list, lingering_mtx_

  std::mutex stop_mtx_;
  std::condition_variable stop_cv_;
  bool stop_requested_ = false; // stop_mtx_

  std::vector<stats_registry::registration> registrations_;
};

/// What the runtime renders under "/runtime" and "/binaries"
/// (docs/stats.md).
extern const metric_section runtime_metrics;
extern const metric_section binaries_metrics;
/// What the runtime renders under "/detach" and "/holders" (docs/stats.md).
extern const metric_section detach_metrics;
extern const metric_section holders_metrics;

/// Blocks SIGINT and SIGTERM in the calling thread and every thread it
/// creates afterwards, so that `runtime::run()` receives them with
/// `sigtimedwait`. Call first thing in `main`, before creating a runtime.
void block_termination_signals() noexcept;

} // namespace mayfly
