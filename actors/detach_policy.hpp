#pragma once

/// @file
/// The detach policy: small slices of large binaries sent to long-lived
/// actors are copied out when they are sent, so that the long-lived actor
/// never pins the whole binary.
///
/// A slice keeps its whole binary alive (docs/guide.md, "When to detach").
/// While it is in flight that is free; stored by an actor that lives for
/// long (an aggregator, a cache, a session table) it keeps a whole pool slot
/// out for a few bytes. The policy decides at the one place that knows both
/// sides, the send: a service marks its long-lived actors
/// (`runtime::mark_long_lived`, which gives each a *holder tag*), and
/// mayfly's own send paths (`handler_context::send`, `fanout`, `batcher`)
/// apply the rule to every slice they send to a marked actor:
///
/// - the slice views at most `max_slice_bytes` bytes, and
/// - its binary holds at least `min_binary_bytes` bytes (a slot size):
///
///   then the viewed bytes are copied into a dedicated binary of their own
///   (one mimalloc allocation, `slice::detach`) and the copy is sent. For a
///   batch (`key_batch`, `slice_batch`) the "slice" is the keys of one
///   binary: a `key_batch` whose keys add up to at most `max_slice_bytes`
///   gets them packed into one dedicated binary and its offsets rebased.
/// - Otherwise the slice goes as it is, and its binary is marked with the
///   actor's holder tag (the top-holders report then names the actor).
///
/// Nothing is scanned later and nothing happens for sends to actors that
/// are not marked: the check is one relaxed load while no actor is marked,
/// and a lookup in a small open-addressing table otherwise (read under a
/// sequence lock: no lock, no allocation).
///
/// **Counted** (`stats()`, docs/stats.md "detach"): slices detached, bytes
/// copied, copies the allocator refused (the original is then sent as it
/// is), and, kept by the buffer pools, *binaries released early*: pool
/// binaries that went back to their pool with at least one slice detached
/// by the policy and none sent to a long-lived actor as it is, i.e. binaries
/// that a long-lived actor would otherwise have kept.
///
/// **Cost.** A send to an unmarked actor: one relaxed load (no actor
/// marked) or one table probe. To a marked actor, when the rule does not
/// apply: the probe plus one relaxed store and one atomic or on the binary.
/// When it applies: one allocation and a copy of the viewed bytes.
///
/// Thread-safety: every member may be called from any thread. Marking and
/// unmarking take a mutex; lookups do not.

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <type_traits>
#include <utility>

#include <caf/actor_cast.hpp>
#include <caf/actor_control_block.hpp>
#include <nlohmann/json.hpp>

#include <mayfly/actors/config.hpp>
#include <mayfly/runtime/counters.hpp>
#include <mayfly/runtime/slice.hpp>

namespace mayfly {

struct key_batch;
struct slice_batch;

// X(name, kind, unit, help): the counters of the detach policy, declared
// once. The enum `detach_policy::counter`, their keys in
// `detach_policy::stats()` and their descriptions (`detach_metrics`:
// Prometheus TYPE/HELP, the docs/stats.md table "detach") are derived from
// it. Any thread bumps them (sharded counters).
#define MAYFLY_DETACH_COUNTERS(X)                                              \
  X(slices_detached, counter, "", "slices (a `key_batch`'s keys: one) copied " \
    "out on their way to a long-lived actor")                                  \
  X(bytes_copied, counter, "bytes", "bytes those copies hold (one dedicated "  \
    "binary each: `binaries.dedicated_*`)")                                    \
  X(detach_failures, counter, "", "copies the allocator refused; the "         \
    "original was sent as it is")                                              \
  X(sent_as_is, counter, "", "slices (batches: one) sent to long-lived "       \
    "actors without a copy: the rule did not apply (or the policy is off); "   \
    "their binaries are attributed to the actor in `holders`")                 \
  X(mark_refused, counter, "", "`mark_long_lived` calls refused because 512 "  \
    "actors were marked already")

/// Which actors are long-lived, and what to do with slices sent to them.
/// Owned by the runtime (shared with the exit hooks of marked actors, so
/// that an actor outliving the runtime unmarks itself safely). See file
/// comment.
class detach_policy {
public:
  /// Long-lived actors that can be marked at once.
  static constexpr size_t kMaxLongLived = 512;

  explicit detach_policy(detach_config cfg) noexcept;

  detach_policy(const detach_policy&) = delete;
  detach_policy& operator=(const detach_policy&) = delete;

  const detach_config& config() const noexcept {
    return cfg_;
  }

  // -- long-lived actors --------------------------------------------------------

  /// Marks the actor `ctrl` long-lived with holder tag `tag` (non-zero);
  /// marking it again changes its tag. False when `kMaxLongLived` actors are
  /// marked already (counted as `mark_refused`). Takes the mutex.
  bool mark(const caf::actor_control_block* ctrl, uint32_t tag);

  /// Forgets `ctrl` (called when the actor exits). Takes the mutex.
  void unmark(const caf::actor_control_block* ctrl) noexcept;

  /// The holder tag of the actor `dest` (any CAF handle), 0 when it is not
  /// marked. No lock, no allocation; O(1) expected.
  template <class Handle>
  uint32_t holder_of(const Handle& dest) const noexcept {
    if (marked_.load(std::memory_order_relaxed) == 0)
      return 0;
    return lookup(caf::actor_cast<caf::actor_control_block*>(dest));
  }

  /// The same for a control block.
  uint32_t holder_of(const caf::actor_control_block* ctrl) const noexcept {
    return marked_.load(std::memory_order_relaxed) == 0 ? 0 : lookup(ctrl);
  }

  /// Actors marked now.
  size_t marked() const noexcept {
    return marked_.load(std::memory_order_relaxed);
  }

  // -- applying the rule ----------------------------------------------------------

  /// Whether the rule copies out `s` (enabled, small slice, large binary).
  bool applies(const slice& s) const noexcept {
    return cfg_.enabled && s.has_owner() && s.size() <= cfg_.max_slice_bytes
           && s.pinned_bytes() >= cfg_.min_binary_bytes;
  }

  /// What to send to the actor with holder tag `tag` (non-zero) in place of
  /// `s`: a detached copy when the rule applies, else `s` with its binary
  /// marked as held by `tag`.
  slice prepare(uint32_t tag, slice s) noexcept;

  /// The same for every key of `b` (see file comment), in place.
  void prepare(uint32_t tag, key_batch& b) noexcept;

  /// The same for every item of `b`, in place (each key on its own).
  void prepare(uint32_t tag, slice_batch& b) noexcept;

  /// One argument of a message to the actor with holder tag `tag`: slices
  /// and batches prepared, anything else passed through untouched.
  template <class T>
  decltype(auto) prepare_argument(uint32_t tag, T&& x) noexcept {
    using value = std::decay_t<T>;
    if constexpr (std::is_same<value, slice>::value) {
      return prepare(tag, slice{std::forward<T>(x)});
    } else if constexpr (std::is_same<value, key_batch>::value
                         || std::is_same<value, slice_batch>::value) {
      value copy{std::forward<T>(x)};
      prepare(tag, copy);
      return copy;
    } else {
      return std::forward<T>(x);
    }
  }

  // -- statistics ---------------------------------------------------------------

  /// Counter ids of `count()`, from `MAYFLY_DETACH_COUNTERS`.
  enum counter : size_t {
#define MAYFLY_X(name, kind, unit, help) name,
    MAYFLY_DETACH_COUNTERS(MAYFLY_X)
#undef MAYFLY_X
    num_counters,
  };

  int64_t count(counter c) const noexcept {
    return counters_.sum(c);
  }

  /// The configuration, the counters and `marked()` as JSON (docs/stats.md
  /// "detach"); `released_early` is the pools' and added by the runtime.
  nlohmann::json stats() const;

private:
  struct entry {
    std::atomic<const caf::actor_control_block*> ctrl{nullptr};
    std::atomic<uint32_t> tag{0};
  };

  // Open addressing over twice the maximum, so probes stay short.
  static constexpr size_t kTableSize = 2 * kMaxLongLived;

  static size_t home(const caf::actor_control_block* ctrl) noexcept;

  uint32_t lookup(const caf::actor_control_block* ctrl) const noexcept;

  /// Counts a copy of `bytes` made for `original` for the holder `tag`, or
  /// a refused one (`!copied`: the original is sent), and flags the
  /// original's binary accordingly.
  void record_copy(const slice& original, uint32_t tag, size_t bytes,
                   bool copied) noexcept;

  /// Marks `s`'s binary as held by `tag` and counts it as sent as it is.
  void record_as_is(const slice& s, uint32_t tag) noexcept;

  detach_config cfg_;
  std::atomic<size_t> marked_{0};
  // Sequence lock: odd while `mtx_`'s holder rewrites the table.
  std::atomic<uint64_t> seq_{0};
  std::array<entry, kTableSize> table_;
  std::mutex mtx_;
  sharded_counters<num_counters> counters_;
};

} // namespace mayfly
