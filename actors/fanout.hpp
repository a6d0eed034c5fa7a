#pragma once

/// @file
/// Fan-out of keyed values from a handler to long-lived actors: `key_batch`
/// (the message), `fanout` (the handler's tool that fills and sends them)
/// and `key_table` (the receiver's flat table of totals by key).
///
/// The pattern: a handler parses its datagram into (KEY, VALUE) items whose
/// keys are byte ranges of the datagram, and forwards each to one of S
/// long-lived actors chosen by a hash of KEY (statsd-like counters, per-key
/// rate limits, sessions keyed by name).
///
/// **Cost model.** What the mission requires per forwarded item is: hash the
/// key once, store (offset, length, hash, value) in a batch, and on the
/// receiving side one probe of a flat table. What it does not require, and
/// this header avoids:
/// - one refcount per key: a `key_batch` holds **one reference to the
///   datagram's binary** for all its keys (zero-copy: keys are ranges of
///   that binary), so a batch costs one atomic increment when it is sent and
///   one decrement when the receiver drops it, whatever its size;
/// - hashing twice: the hash that picked the destination travels in the
///   item, and `key_table` probes with it;
/// - a node allocation and a pointer chase per lookup: `key_table` is open
///   addressing over one array, keys copied into chunked storage of its own
///   (never a slice: a stored key pins nothing, see "Pinning" in
///   docs/guide.md).
///
/// **Hashing.** `key_hash` is seeded once per process from
/// `std::random_device`, so that a sender cannot precompute keys that
/// collide (hash flooding). A batch received from another node gets its
/// hashes recomputed locally (actors/messages.cpp); a hash is never taken
/// from the network.
///
/// Thread-safety: `key_batch` is a value (moved into a CAF message);
/// `fanout` and `key_table` are not thread-safe (one handler's, one actor's).

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <caf/actor.hpp>
#include <caf/deserializer.hpp>
#include <caf/error.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/send.hpp>
#include <caf/serializer.hpp>

#include <mayfly/actors/detach_policy.hpp>
#include <mayfly/actors/messages.hpp>

#include <mayfly/runtime/arena.hpp>
#include <mayfly/runtime/assert.hpp>
#include <mayfly/runtime/slice.hpp>

namespace mayfly {

class handler_context;

/// The process-wide seed of `key_hash` (random, fixed at first use).
uint64_t key_hash_seed() noexcept;

/// A 64-bit hash of `key`, seeded per process. O(length), ~1 ns per 8
/// bytes. Any thread.
inline uint64_t key_hash(std::string_view key) noexcept {
  static const uint64_t seed = key_hash_seed();
  constexpr uint64_t k1 = 0x9fb21c651e98df25ull;
  constexpr uint64_t k2 = 0xc2b2ae3d27d4eb4full;
  uint64_t h = seed ^ (key.size() * k1);
  const char* p = key.data();
  size_t n = key.size();
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ (w * k2)) * k1;
    h ^= h >> 31;
  }
  uint64_t w = 0;
  std::memcpy(&w, p, n);
  h = (h ^ (w * k2)) * k1;
  h ^= h >> 29;
  h *= k2;
  h ^= h >> 32;
  return h;
}

/// Destination `0..n-1` for a key hash: the hash's high bits, so that a
/// `key_table` (which probes with the low bits) does not see only one
/// residue class per destination.
inline size_t pick_destination(uint64_t hash, size_t n) noexcept {
  return static_cast<size_t>(((hash >> 32) * n) >> 32);
}

/// One item of a `key_batch`: a key as a byte range of the batch's binary,
/// its `key_hash`, and a value.
struct key_item {
  uint32_t offset = 0;
  uint32_t length = 0;
  uint64_t hash = 0;
  int64_t value = 0;
};

/// Up to `kCapacity` keyed values whose keys all lie in one binary,
/// `source`, in one CAF message. Holds one reference to that binary in
/// all (moving a batch moves it: no refcount traffic). ~1.6 KiB, no heap
/// allocation of its own. Local sends are zero-copy; a remote send copies
/// the keys once (wire format: docs/design/distribution.md, registered as
/// "mayfly.key_batch").
struct key_batch {
  static constexpr size_t kCapacity = 64;

  slice source; ///< the binary the keys are ranges of
  uint32_t size = 0;
  std::array<key_item, kCapacity> items;

  bool full() const noexcept {
    return size == kCapacity;
  }

  /// The key of `item` (a view into `source`: valid while the batch lives).
  std::string_view key(const key_item& item) const noexcept {
    return {reinterpret_cast<const char*>(source.data()) + item.offset,
            item.length};
  }

  /// @pre `!full()` and `key` lies inside `source`.
  void push(std::string_view key, uint64_t hash, int64_t value) noexcept {
    auto* base = reinterpret_cast<const char*>(source.data());
    MAYFLY_ASSERT(key.data() >= base
                  && key.data() + key.size() <= base + source.size());
    items[size] = {static_cast<uint32_t>(key.data() - base),
                   static_cast<uint32_t>(key.size()), hash, value};
    ++size;
  }

  /// The filled items (no begin()/end() on the batch itself: CAF would
  /// take it for a container).
  struct span {
    const key_item* first;
    const key_item* last;
    const key_item* begin() const noexcept {
      return first;
    }
    const key_item* end() const noexcept {
      return last;
    }
  };

  span view() const noexcept {
    return {items.data(), items.data() + size};
  }
};

namespace detail {

// Out of line (actors/messages.cpp, next to slice_batch's): same wire
// format as a slice_batch; loading recomputes every hash locally.
caf::error save_remote(caf::serializer& sink, const key_batch& x);
caf::error load_remote(caf::deserializer& source, key_batch& x);
std::string to_text(const key_batch& x);

} // namespace detail

/// Serializes or deserializes a key batch: its keys travel (once), the
/// binary and the hashes do not; all keys arrive in one binary from the
/// receiving runtime's pools.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, key_batch& x) {
  if constexpr (std::is_base_of<caf::serializer, Inspector>::value) {
    return detail::save_remote(f, x);
  } else if constexpr (std::is_base_of<caf::deserializer, Inspector>::value) {
    return detail::load_remote(f, x);
  } else {
    static_assert(Inspector::reads_state, "unknown loading inspector");
    std::string text = detail::to_text(x);
    return f(caf::meta::type_name("mayfly.key_batch"), text);
  }
}

/// Groups keyed values of one datagram by destination and sends them as
/// `key_batch`es, each holding one reference to the datagram. Lives in a
/// handler, its batches in the handler's arena (one arena allocation per
/// destination used). `flush()` (also run by the destructor) sends what is
/// pending. Not thread-safe.
///
/// Batches are sent without a sender (`caf::anon_send`), like `batcher`'s:
/// a queued batch does not keep the handler alive; order between one
/// handler and one destination is kept. Cost per item: one `key_hash`, a
/// 24-byte store; per batch: one refcount increment, one CAF message.
///
/// Built from a `handler_context`, a fanout applies the runtime's detach
/// policy (actors/detach_policy.hpp) to each batch it sends to an actor
/// marked long-lived: a batch whose keys add up to at most
/// `max_slice_bytes` of a large binary carries a packed copy of its keys
/// instead of a reference to the datagram. Per batch: one table lookup.
class fanout {
public:
  /// `ctx`: the handler (its arena, and its runtime's detach policy).
  /// `destinations` and `source` must outlive the fanout.
  fanout(handler_context& ctx, const std::vector<caf::actor>& destinations,
         const slice& source);

  /// `source`: the binary every key added lies in (the datagram's payload).
  /// `destinations` and `source` must outlive the fanout.
  fanout(arena& mem, const std::vector<caf::actor>& destinations,
         const slice& source)
    : mem_(&mem), dests_(&destinations), source_(&source),
      batches_(mem.make_array<key_batch*>(destinations.size())) {
    std::fill(batches_, batches_ + destinations.size(), nullptr);
  }

  fanout(const fanout&) = delete;
  fanout& operator=(const fanout&) = delete;

  ~fanout() {
    flush();
  }

  /// Queues (key, value) for the destination `key_hash(key)` picks.
  /// @pre there is at least one destination; `key` lies in the source.
  void add(std::string_view key, int64_t value) {
    auto hash = key_hash(key);
    add(pick_destination(hash, dests_->size()), key, hash, value);
  }

  /// Queues (key, value) for destination `index`, with its precomputed
  /// `hash` (which must be `key_hash(key)`); sends that destination's batch
  /// when it fills up.
  void add(size_t index, std::string_view key, uint64_t hash, int64_t value) {
    auto*& batch = batches_[index];
    if (batch == nullptr)
      batch = mem_->make<key_batch>();
    if (batch->size == 0)
      batch->source = *source_; // the batch's one reference
    batch->push(key, hash, value);
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
    batch->source.reset(); // moved-from already; make it explicit
    batch->size = 0;
    ++messages_;
  }

  arena* mem_;
  const std::vector<caf::actor>* dests_;
  const slice* source_;
  key_batch** batches_;
  detach_policy* policy_ = nullptr; // none: built from an arena alone
  size_t messages_ = 0;
};

/// Totals by key for a long-lived actor: open addressing (linear probing)
/// over one array of 32-byte entries, kept at most half full; keys copied
/// into 64 KiB chunks it owns (a stored key pins no received binary).
/// At most `max_keys` keys: adding another is refused and counted
/// (`refused()`), so a sender of ever-new keys cannot grow it without
/// bound. Memory: ≤ 64 B of table per key at the worst load, plus the key
/// bytes, plus one chunk. Not thread-safe: one actor's state.
class key_table {
public:
  /// What `add` did.
  enum class outcome { updated, inserted, refused };

  explicit key_table(size_t max_keys = 1'000'000);

  key_table(const key_table&) = delete;
  key_table& operator=(const key_table&) = delete;
  key_table(key_table&&) noexcept = default;
  key_table& operator=(key_table&&) noexcept = default;

  /// Adds `value` (wrapping, like two's complement) to the total of `key`,
  /// whose `key_hash` is `hash`; creates it at `value` when absent and the
  /// bound allows. Amortized O(1); O(length) to copy a new key.
  outcome add(std::string_view key, uint64_t hash, int64_t value);

  /// The total of `key`, or nullptr. O(1) expected.
  const int64_t* find(std::string_view key, uint64_t hash) const noexcept;

  const int64_t* find(std::string_view key) const noexcept {
    return find(key, key_hash(key));
  }

  size_t size() const noexcept {
    return size_;
  }

  size_t max_keys() const noexcept {
    return max_keys_;
  }

  /// Additions refused because the table held `max_keys` keys.
  uint64_t refused() const noexcept {
    return refused_;
  }

  /// Bytes held: the entry array and the key chunks.
  size_t memory_bytes() const noexcept {
    return capacity_ * sizeof(entry) + chunks_.size() * kChunkBytes;
  }

private:
  struct entry {
    uint64_t hash;
    const char* key; // nullptr: empty
    uint32_t length;
    int64_t total;
  };

  static constexpr size_t kChunkBytes = 64 * 1024;

  size_t slot_of(std::string_view key, uint64_t hash) const noexcept;
  const char* store(std::string_view key);
  void grow();

  std::unique_ptr<entry[]> entries_;
  size_t capacity_ = 0; // a power of two
  size_t size_ = 0;
  size_t max_keys_;
  uint64_t refused_ = 0;
  std::vector<std::unique_ptr<char[]>> chunks_;
  size_t chunk_used_ = kChunkBytes;
};

} // namespace mayfly
