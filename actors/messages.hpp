#pragma once

/// @file
/// The message types mayfly puts into CAF messages, and `slice_batch`, the
/// cheap way to forward many small items.
///
/// Include this header wherever a `slice`, `datagram`, `udp_address` or
/// `slice_batch` is sent in a CAF message. They are local-only message types
/// (`CAF_ALLOW_UNSAFE_MESSAGE_TYPE`): a slice travels between actors of one
/// process as a reference, never as bytes.
///
/// **Why batches.** One CAF message costs about as much as a small handler
/// (shared/FACTS.md: ~1,200 instructions and one allocation). A tally
/// datagram of 40 lines forwarded line by line costs 40 messages; a
/// `slice_batch` carries up to `slice_batch::kCapacity` (key, value) pairs
/// to one destination in one message. `batcher` fills one batch per
/// destination in the handler's arena and sends each when full and at the
/// end.

#include <array>
#include <cstdint>
#include <vector>

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/event_based_actor.hpp>

#include "actors/datagram.hpp"
#include "runtime/arena.hpp"
#include "runtime/slice.hpp"

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

/// Groups keyed values by destination and sends them as `slice_batch`es.
/// Lives in a handler; its batches live in the handler's arena. `flush()`
/// (also run by the destructor) sends what is pending. Not thread-safe: one
/// handler's tool.
class batcher {
public:
  /// `destinations` must outlive the batcher. One arena allocation per
  /// destination used, made on first use.
  batcher(caf::event_based_actor* self, arena& mem,
          const std::vector<caf::actor>& destinations)
    : self_(self), mem_(&mem), dests_(&destinations),
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
    self_->send((*dests_)[index], std::move(*batch));
    batch->size = 0; // moved-from slices are empty
    ++messages_;
  }

  caf::event_based_actor* self_;
  arena* mem_;
  const std::vector<caf::actor>* dests_;
  slice_batch** batches_;
  size_t messages_ = 0;
};

} // namespace mayfly

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(mayfly::slice)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(mayfly::udp_address)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(mayfly::datagram)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(mayfly::slice_batch)
