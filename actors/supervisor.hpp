#pragma once

/// @file
/// `spawn_supervisor`: long-lived actors that are restarted when they die,
/// Erlang's `one_for_one` supervisor with a restart intensity.
///
/// A supervisor owns a fixed number of interchangeable *children* (slot 0 to
/// N-1, e.g. tally's aggregators). It monitors each one. When a child dies
/// for any reason other than the supervisor's own shutdown (an exception
/// escaped its handler, someone sent it `exit_reason::kill`), the
/// supervisor:
///
/// 1. counts the death and logs it to stderr with the slot and the reason;
/// 2. calls `on_death(slot, reason)` (the service counts what was lost: a
///    restarted child starts with empty state, and the messages still in
///    the dead child's mailbox are gone);
/// 3. makes a new child for the slot with `make_child` and publishes it in
///    the group's member table, where senders find it from then on.
///
/// **Restart intensity.** If more than `max_restarts` restarts would happen
/// within `period_ms`, the supervisor gives up as Erlang's does: it logs,
/// stops every child, empties the member table (senders then find no
/// destination and must count what they cannot deliver), calls
/// `on_give_up` (the service decides: tally stops with exit code 4) and
/// exits. A crash loop thus ends loudly instead of spinning.
///
/// **Shutdown.** The supervisor is a long-lived actor of the runtime
/// (`runtime::spawn`): `runtime::stop()` tells it to exit, and it takes its
/// children down with it (they are monitored, not linked: a child killed
/// with `exit_reason::kill` must not take the supervisor along, which a
/// link would, since CAF treats `kill` as fatal for linked actors too).
///
/// **Reading the members.** `supervised_group::members()` is one load of a
/// `std::atomic<std::shared_ptr>`, callable from any thread, e.g. once per
/// datagram in a handler. Cost: libstdc++ 12 briefly sets a lock bit in the
/// atomic to take a reference, so every call is two read-modify-writes on
/// one shared cache line plus the reference count, contended when several
/// threads call it at once (not measured on its own; the local tally
/// figures in docs/design/distribution.md include it). A per-thread cache
/// keyed by a generation number would avoid it if it shows in a profile.
/// The table is immutable; restarts publish a new one. It holds strong
/// handles: call `supervised_group::clear()` before the actor system is
/// destroyed.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/error.hpp>
#include <nlohmann/json.hpp>

namespace mayfly {

class runtime;

/// How often children may be restarted before the supervisor gives up.
struct restart_policy {
  /// Restarts allowed within `period_ms`; one more makes it give up.
  uint32_t max_restarts = 5;
  uint32_t period_ms = 10000;
};

/// The current children of a supervisor and what happened to them. Shared
/// between the supervisor (writer) and any number of readers. Thread-safe.
class supervised_group {
public:
  using members_ptr = std::shared_ptr<const std::vector<caf::actor>>;

  supervised_group() : members_(std::make_shared<std::vector<caf::actor>>()) {
  }

  /// The children now, slot by slot; empty before the start and after the
  /// supervisor ended or gave up. One atomic load; any thread.
  members_ptr members() const noexcept {
    return members_.load(std::memory_order_acquire);
  }

  /// Children that died and were not the supervisor's own doing.
  int64_t deaths() const noexcept {
    return deaths_.load(std::memory_order_relaxed);
  }

  /// Children restarted.
  int64_t restarts() const noexcept {
    return restarts_.load(std::memory_order_relaxed);
  }

  /// Whether the restart intensity was exceeded.
  bool gave_up() const noexcept {
    return gave_up_.load(std::memory_order_relaxed);
  }

  /// {"children", "deaths", "restarts", "gave_up"}.
  nlohmann::json stats() const;

  /// Drops every handle (call before the actor system is destroyed).
  void clear() {
    publish(std::make_shared<std::vector<caf::actor>>());
  }

private:
  friend struct supervisor_access;

  void publish(members_ptr table) {
    members_.store(std::move(table), std::memory_order_release);
  }

  std::atomic<members_ptr> members_;
  std::atomic<int64_t> deaths_{0};
  std::atomic<int64_t> restarts_{0};
  std::atomic<bool> gave_up_{false};
};

/// What a supervisor supervises. See file comment.
struct supervisor_options {
  /// Names the children in log lines, e.g. "tally aggregator".
  std::string name = "child";
  /// Number of slots (>= 1).
  size_t children = 1;
  restart_policy policy;
  /// Spawns the child for `slot` on `system` (plainly: no link, no
  /// monitor; the supervisor monitors it). Called for every slot by
  /// `spawn_supervisor` and again at each restart, on the supervisor's
  /// worker thread.
  std::function<caf::actor(caf::actor_system& system, size_t slot)> make_child;
  /// Optional: called on the supervisor's thread after a child died, before
  /// it is replaced.
  std::function<void(size_t slot, const caf::error& reason)> on_death;
  /// Optional: called once on the supervisor's thread when it gives up.
  std::function<void()> on_give_up;
};

/// Spawns the children, publishes them in `group` (so they are visible when
/// this returns), then spawns the supervisor as a long-lived actor of `rt`.
/// Returns the supervisor.
caf::actor spawn_supervisor(runtime& rt, supervisor_options opts,
                            std::shared_ptr<supervised_group> group);

} // namespace mayfly
