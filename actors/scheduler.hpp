#pragma once

/// @file
/// mayfly's CAF scheduler: CAF 0.17.6's work-stealing coordinator, unchanged
/// except for one thing its clock does at every actor exit.
///
/// **Why.** CAF's clock lives on its own thread (`caf.clock`). Every actor,
/// when it terminates, tells that thread to forget its timeouts: a heap
/// allocated event, a mutex, and a condition-variable wake-up of the clock
/// thread. For a runtime that spawns an actor per datagram that is a third
/// of the heap allocations of a spawn and a cross-thread wake-up per
/// datagram, although almost no handler ever arms a timeout (measured:
/// docs/benchmarks.md, "CAF's clock at actor exit").
///
/// **What changes.** The clock the actors see forwards everything to CAF's
/// own clock (same thread, same dispatch loop, same semantics), and it
/// remembers which actors armed a cancellable timeout (a receive timeout,
/// a request timeout, `after` in a behavior). At exit only those actors'
/// cancellations are forwarded; for every other actor the exit costs one
/// relaxed load. Delayed messages (`delayed_send`) are not cancellable in
/// CAF and are forwarded untouched.
///
/// **Use.** `runtime::make(cfg)` installs it in the actor system it owns.
/// A service that brings its own system (`runtime::make(cfg, system)`) calls
/// `install_scheduler(sys_cfg)` before constructing the system to get the
/// same cost; without it everything works, at CAF's price.
///
/// Thread-safety: all of CAF's clock interface may be called from any
/// thread, as with CAF's clock. Cost: an actor that arms a timeout pays a
/// mutex and a hash-set insertion once, plus CAF's own cost.

#include <cstdint>

namespace caf {
class actor_system;
class actor_system_config;
} // namespace caf

namespace mayfly {

/// Makes systems built from `cfg` use mayfly's scheduler (see above): adds
/// a module factory for the scheduler module. Has no effect when `cfg`
/// selects CAF's "testing" scheduler policy (the deterministic test
/// coordinator stays as it is). Call before constructing the system.
void install_scheduler(caf::actor_system_config& cfg);

/// What the scheduler's clock did, for tests and /stats.
struct scheduler_clock_stats {
  /// Actors that armed at least one cancellable timeout.
  int64_t armed_actors = 0;
  /// Exits whose cancellation was forwarded to CAF's clock.
  int64_t cancellations_forwarded = 0;
  /// Actors alive now with a timeout armed (their exit will be forwarded).
  int64_t tracked_now = 0;
};

/// The clock statistics of `sys`, or nothing if `sys` does not run mayfly's
/// scheduler. Thread-safe.
bool scheduler_stats(caf::actor_system& sys, scheduler_clock_stats& out);

} // namespace mayfly
