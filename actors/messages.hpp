#pragma once

/// @file
/// The message types mayfly puts into CAF messages, and `slice_batch`, the
/// cheap way to forward many small items.
///
/// Include this header wherever a `slice`, `datagram`, `udp_address` or
/// `slice_batch` is sent in a CAF message.
///
/// **Local sends are zero-copy.** CAF never serializes a message between
/// actors of one process: a `slice` travels as a reference (one refcount
/// increment per copy, none per move), a `slice_batch` as 32 of them.
///
/// **Remote sends copy, once.** `slice` and `slice_batch` have a real
/// `inspect`, so CAF's middleman (BASP over TCP) can send them to an actor
/// on another node. The sender writes the viewed bytes; the receiving node
/// reads them into a *fresh binary from its own runtime's buffer pools*
/// (`buffer_pools::acquire`), so its pool statistics, pinning report and
/// balance see remote data exactly like received datagrams. A batch lands
/// as one binary holding all its keys, each item a sub-slice of it. The
/// receiving actor system must belong to a `mayfly::runtime` (it registers
/// its pools with the system); both nodes must announce the types
/// (`add_message_types`, done by `runtime::make` for the system it owns).
/// Wire formats and limits: docs/design/distribution.md.
///
/// Input from the network is checked before anything is allocated: a slice
/// over `kMaxRemoteSliceBytes`, a batch with more than `kCapacity` items,
/// key lengths that do not add up, a truncated message, or an exhausted pool
/// make deserialization fail with a `mayfly` error (`malformed`,
/// `too_large`, `pool_exhausted`, `not_running` when the system has no
/// runtime); CAF then drops that one message. Every such rejection is
/// counted (`remote_message_stats()`, "/remote" in the statistics), so no
/// loss is silent. `udp_address` and `datagram` stay local-only.
///
/// **Why batches.** One CAF message costs about as much as a small handler
/// (docs/facts.md: ~1,200 instructions and one allocation). A tally
/// datagram of 40 lines forwarded line by line costs 40 messages; a
/// `slice_batch` carries up to `slice_batch::kCapacity` (key, value) pairs
/// to one destination in one message. `batcher` fills one batch per
/// destination in the handler's arena and sends each when full and at the
/// end.

#include <array>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/deserializer.hpp>
#include <caf/error.hpp>
#include <caf/fwd.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/send.hpp>
#include <caf/serializer.hpp>
#include <nlohmann/json.hpp>

#include <mayfly/actors/datagram.hpp>
#include <mayfly/actors/detach_policy.hpp>
#include <mayfly/runtime/metrics.hpp>
#include <mayfly/runtime/arena.hpp>
#include <mayfly/runtime/fwd.hpp>
#include <mayfly/runtime/slice.hpp>

namespace mayfly {

/// One forwarded item: a key (a zero-copy slice) and a value.
struct keyed_value {
  slice key;
  int64_t value = 0;
};

/// Up to `kCapacity` keyed values for one destination, in one CAF message.
/// Moving a batch moves its slices (no refcount traffic); copying adds one
/// reference per item. ~1 KiB, no heap allocation of its own.
struct slice_batch {
  static constexpr size_t kCapacity = 32;

  uint32_t size = 0;
  std::array<keyed_value, kCapacity> items;

  bool full() const noexcept {
    return size == kCapacity;
  }

  /// @pre `!full()`
  void push(slice key, int64_t value) noexcept {
    items[size].key = std::move(key);
    items[size].value = value;
    ++size;
  }

  /// The filled items, for range-for: `for (auto& kv : batch.view())`.
  /// (No begin()/end() on the batch itself: CAF would take it for a
  /// container and try to serialize it element-wise.)
  struct span {
    const keyed_value* first;
    const keyed_value* last;
    const keyed_value* begin() const noexcept {
      return first;
    }
    const keyed_value* end() const noexcept {
      return last;
    }
  };

  span view() const noexcept {
    return {items.data(), items.data() + size};
  }
};

class handler_context;

/// Groups keyed values by destination and sends them as `slice_batch`es.
/// Lives in a handler; its batches live in the handler's arena. `flush()`
/// (also run by the destructor) sends what is pending. Not thread-safe: one
/// handler's tool.
///
/// Batches are sent without a sender (`caf::anon_send`): a receiver cannot
/// reply to one, and a queued batch does not keep the handler alive. (With
/// the sender attached, the handler's actor would be destroyed by whichever
/// thread drops the last queued batch, typically the receiver's worker:
/// its memory freed across threads, its exit bookkeeping run there.) Order
/// between one handler and one destination is kept (CAF mailboxes are
/// FIFO). Built from a `handler_context`, it applies the runtime's detach
/// policy to every key of a batch sent to an actor marked long-lived
/// (actors/detach_policy.hpp).
class batcher {
public:
  /// `ctx`: the handler (its arena and its runtime's detach policy).
  batcher(handler_context& ctx, const std::vector<caf::actor>& destinations);

  /// `mem`: the handler's arena (`ctx.arena()`). `destinations` must
  /// outlive the batcher. One arena allocation per destination used, made
  /// on first use.
  batcher(arena& mem, const std::vector<caf::actor>& destinations)
    : mem_(&mem), dests_(&destinations),
      batches_(mem.make_array<slice_batch*>(destinations.size())) {
    std::fill(batches_, batches_ + destinations.size(), nullptr);
  }

  batcher(const batcher&) = delete;
  batcher& operator=(const batcher&) = delete;

  ~batcher() {
    flush();
  }

  /// Queues (key, value) for destination `index`; sends that destination's
  /// batch when it fills up.
  void add(size_t index, slice key, int64_t value) {
    auto*& batch = batches_[index];
    if (batch == nullptr)
      batch = mem_->make<slice_batch>();
    batch->push(std::move(key), value);
    if (batch->full())
      send(index);
  }

  /// Sends every non-empty batch.
  void flush() {
    for (size_t i = 0; i < dests_->size(); ++i)
      if (batches_[i] != nullptr && batches_[i]->size > 0)
        send(i);
  }

  /// Messages sent so far.
  size_t messages() const noexcept {
    return messages_;
  }

private:
  void send(size_t index) {
    auto* batch = batches_[index];
    auto& dest = (*dests_)[index];
    if (policy_ != nullptr)
      if (auto tag = policy_->holder_of(dest); tag != 0)
        policy_->prepare(tag, *batch);
    caf::anon_send(dest, std::move(*batch));
    batch->size = 0; // moved-from slices are empty
    ++messages_;
  }

  arena* mem_;
  const std::vector<caf::actor>* dests_;
  slice_batch** batches_;
  detach_policy* policy_ = nullptr; // none: built from an arena alone
  size_t messages_ = 0;
};

// -- crossing nodes ---------------------------------------------------------------

/// Largest slice a node accepts from the network: any UDP payload fits.
inline constexpr size_t kMaxRemoteSliceBytes = 65535;

/// Announces `slice` ("mayfly.slice") and `slice_batch`
/// ("mayfly.slice_batch") to a CAF configuration, so that the middleman can
/// send and receive them. `runtime::make(cfg)` does this for the system it
/// owns; a service that lends its own system calls it before constructing
/// that system. Both nodes must announce them.
void add_message_types(caf::actor_system_config& cfg);

/// Counters of slices and batches serialized for, and deserialized from,
/// other nodes, and of rejected input, process-wide (JSON,
/// docs/stats.md "remote"). Any thread.
nlohmann::json remote_message_stats();

namespace detail {

// Out of line (actors/messages.cpp): the inspect overloads below dispatch
// here for CAF's binary serializer and deserializer.
caf::error save_remote(caf::serializer& sink, const slice& x);
caf::error load_remote(caf::deserializer& source, slice& x);
caf::error save_remote(caf::serializer& sink, const slice_batch& x);
caf::error load_remote(caf::deserializer& source, slice_batch& x);

/// Lets deserializers on `system` take binaries from `pools` (stored in the
/// system's runtime settings). Returns false, and changes nothing, when
/// another runtime already registered its pools there.
bool attach_pools(caf::actor_system& system, buffer_pools* pools);

/// Undoes `attach_pools` if `pools` are the ones registered.
void detach_pools(caf::actor_system& system, buffer_pools* pools);

/// The bytes as text (for CAF's `to_string` of a message).
std::string to_text(const slice& x);
std::string to_text(const slice_batch& x);

template <class Inspector, class T>
typename Inspector::result_type inspect_remote(Inspector& f, T& x,
                                               const char* name) {
  if constexpr (std::is_base_of<caf::serializer, Inspector>::value) {
    return save_remote(f, x);
  } else if constexpr (std::is_base_of<caf::deserializer, Inspector>::value) {
    return load_remote(f, x);
  } else {
    // Read-only inspectors (CAF's to_string of a message, logging).
    static_assert(Inspector::reads_state, "unknown loading inspector");
    std::string text = to_text(x);
    return f(caf::meta::type_name(name), text);
  }
}

} // namespace detail

/// Serializes or deserializes a slice: its bytes travel, the binary does
/// not. Loading takes a fresh binary from the receiving runtime's pools.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, slice& x) {
  return detail::inspect_remote(f, x, "mayfly.slice");
}

/// Serializes or deserializes a batch: all keys arrive in one binary.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, slice_batch& x) {
  return detail::inspect_remote(f, x, "mayfly.slice_batch");
}

/// What `remote_message_stats()` renders under "/remote" (docs/stats.md).
extern const metric_section remote_metrics;

} // namespace mayfly

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(mayfly::udp_address)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(mayfly::datagram)
