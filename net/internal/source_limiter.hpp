#pragma once

// `source_limiter`: the per-source token buckets of one IO loop (not
// installed). Admission asks it first, before a datagram can become a
// handler (net/internal/admission.hpp); options in `source_limit_options`
// (actors/handler.hpp), operator's view in docs/guide.md, "Limiting each
// source".
//
// **Key.** A source's key is its address cut to a prefix: IPv4 to
// `ipv4_prefix` bits (an IPv4-mapped IPv6 address, ::ffff:a.b.c.d, is IPv4),
// IPv6 to `ipv6_prefix` bits. The port is not part of it.
//
// **Bucket.** One 64-bit number per key, the time at which its bucket will
// be full again ("tat", as in the generic cell rate algorithm, which is a
// token bucket kept as a time). With T = 1 s / rate: a datagram at `now`
// is admitted when tat - now <= (burst - 1) * T, and then tat becomes
// max(tat, now) + T; a refused datagram changes nothing. A quiet source
// may send `burst` datagrams at once, and over any span t at most
// burst + rate * t are admitted. T is whole nanoseconds (rate <= 10^7, so
// within 1%).
//
// **Table.** `table_size` buckets (a power of two) in sets of `ways`: a key
// lives in the one set its hash names (the hash has a random seed per
// table, so a sender cannot aim at a set), in any of its `ways` slots.
// Allocated once; a lookup compares at most `ways` keys. A bucket whose
// tat has passed (it is full: its source was quiet long enough to refill)
// holds nothing worth keeping and is free.
//
// **Eviction rule.** A new key takes a free slot of its set when there is
// one and starts with a full bucket. When every slot of the set is in use
// (every bucket is still refilling), the new key takes the slot whose
// bucket will be full soonest (the least debt) and *inherits that tat*
// rather than a full bucket; the eviction is counted. Why: a key evicted
// from a set never comes back better off than if it had stayed. Every
// slot of its set had at least its tat when it left; tats only grow while
// a slot is kept, an inherited tat is the set's least, and a slot frees up
// only once its tat has passed, which is when the evicted key's own bucket
// would have been full anyway. So a flooder gains nothing from being
// pushed out (by other sources or its own churn of addresses): when it
// returns it is refused at least as long as if it had stayed. The price:
// when more new sources arrive than the table holds (more than about
// table_size * rate new sources a second), newly seen sources share their
// set's budget (at most `ways` * rate a second plus the bursts) and a
// newcomer into a set full of buckets in debt can be refused; the
// evictions counter shows it, and a larger table is the cure.
//
// **Limited sources.** A bucket is "limited" from a refusal until the next
// admission or until it is full again; `limited(now)` counts them.
//
// Ownership: the table. Thread-safety: `admit` on the loop's IO thread
// only; `limited` from any thread (relaxed reads, a bucket being updated
// meanwhile counts as before or after). Cost: `admit` O(ways), one hash, no
// allocation, no clock read (the caller passes the batch's time);
// `limited` O(table_size).

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include <mayfly/actors/address.hpp>
#include <mayfly/actors/handler.hpp>

namespace mayfly::detail {

/// See file comment.
class source_limiter {
public:
  /// Slots per set.
  static constexpr size_t ways = 8;

  /// What `admit` decided.
  struct decision {
    bool admitted;
    /// A key in use left the table to make room (see the eviction rule).
    bool evicted;
  };

  /// Allocates the table. `seed` keys the hash. Cold path.
  /// @pre `opts.enabled()` and `opts.check()` is empty.
  source_limiter(const source_limit_options& opts, uint64_t seed);

  source_limiter(const source_limiter&) = delete;
  source_limiter& operator=(const source_limiter&) = delete;

  /// Charges one datagram from `peer` received at `now_ns` (steady clock;
  /// non-decreasing from call to call). IO thread only. O(ways).
  decision admit(const udp_address& peer, int64_t now_ns) noexcept;

  /// Sources limited at `now_ns` (file comment). Any thread. O(table_size).
  int64_t limited(int64_t now_ns) const noexcept;

  /// Buckets in the table (`table_size` rounded up to a power of two).
  size_t capacity() const noexcept {
    return sets_ * ways;
  }

  /// The set `peer` falls in (tests aim sources at one set with it).
  size_t set_of(const udp_address& peer) const noexcept;

private:
  struct key {
    uint64_t hi;
    uint64_t lo;
  };

  struct alignas(32) bucket {
    key k{0, 0};                      // IO thread only
    std::atomic<int64_t> tat{0};      // full again at this time; 0: unused
    std::atomic<bool> limited{false}; // refused since the last admission
  };

  key key_of(const udp_address& peer) const noexcept;
  size_t set_index(key k) const noexcept;
  bool charge(bucket& b, int64_t tat, int64_t now) noexcept;

  int64_t interval_ns_;  // T = 1 s / rate
  int64_t tolerance_ns_; // (burst - 1) * T
  uint32_t v4_mask_;
  uint64_t v6_mask_hi_;
  uint64_t v6_mask_lo_;
  uint64_t seed_;
  size_t sets_;
  std::unique_ptr<bucket[]> table_;
};

} // namespace mayfly::detail
