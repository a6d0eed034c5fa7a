#pragma once

/// @file
/// `bounded_queue<T>`: a fixed-capacity, lock-free multi-producer queue.
///
/// Handler actors on any CAF worker push replies; the endpoint's IO thread
/// pops them. Every cell carries a sequence number that says whose turn it
/// is (the classic bounded-queue design for many producers): a push claims a
/// position with one CAS on the tail and publishes the cell with a release
/// store; a pop does the same on the head. No allocation after construction,
/// no lock, O(1). `try_push` fails (returns false) when full: the caller
/// counts the drop; it never blocks.
///
/// Thread-safety: `try_push` and `try_pop` from any threads. `T` must be
/// nothrow move-constructible and -assignable.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <type_traits>

#include <mayfly/runtime/assert.hpp>

namespace mayfly {

/// Fixed-capacity lock-free queue. See file comment.
template <class T>
class bounded_queue {
public:
  static_assert(std::is_nothrow_move_constructible_v<T>
                && std::is_nothrow_move_assignable_v<T>);

  /// A queue for `capacity` elements, rounded up to a power of two. One
  /// allocation, here.
  explicit bounded_queue(size_t capacity)
    : mask_(round_up(capacity) - 1), cells_(new cell[mask_ + 1]) {
    for (size_t i = 0; i <= mask_; ++i)
      cells_[i].seq.store(i, std::memory_order_relaxed);
  }

  bounded_queue(const bounded_queue&) = delete;
  bounded_queue& operator=(const bounded_queue&) = delete;

  size_t capacity() const noexcept {
    return mask_ + 1;
  }

  /// Moves `x` in; false (and `x` untouched) when the queue is full.
  bool try_push(T& x) noexcept {
    auto pos = tail_.load(std::memory_order_relaxed);
    for (;;) {
      auto& c = cells_[pos & mask_];
      auto seq = c.seq.load(std::memory_order_acquire);
      auto diff = static_cast<intptr_t>(seq) - static_cast<intptr_t>(pos);
      if (diff == 0) {
        if (tail_.compare_exchange_weak(pos, pos + 1,
                                        std::memory_order_relaxed)) {
          c.value = std::move(x);
          c.seq.store(pos + 1, std::memory_order_release);
          return true;
        }
      } else if (diff < 0) {
        return false; // full
      } else {
        pos = tail_.load(std::memory_order_relaxed);
      }
    }
  }

  /// Moves the oldest element into `out`; false when empty.
  bool try_pop(T& out) noexcept {
    auto pos = head_.load(std::memory_order_relaxed);
    for (;;) {
      auto& c = cells_[pos & mask_];
      auto seq = c.seq.load(std::memory_order_acquire);
      auto diff = static_cast<intptr_t>(seq) - static_cast<intptr_t>(pos + 1);
      if (diff == 0) {
        if (head_.compare_exchange_weak(pos, pos + 1,
                                        std::memory_order_relaxed)) {
          out = std::move(c.value);
          c.value = T{}; // drop what the cell held (e.g. a slice) now
          c.seq.store(pos + mask_ + 1, std::memory_order_release);
          return true;
        }
      } else if (diff < 0) {
        return false; // empty
      } else {
        pos = head_.load(std::memory_order_relaxed);
      }
    }
  }

  /// Whether the queue looks empty (a snapshot; may be stale at once).
  bool empty() const noexcept {
    return head_.load(std::memory_order_acquire)
           == tail_.load(std::memory_order_acquire);
  }

private:
  static size_t round_up(size_t n) {
    size_t p = 2;
    while (p < n)
      p <<= 1;
    return p;
  }

  struct cell {
    std::atomic<size_t> seq;
    T value{};
  };

  size_t mask_;
  std::unique_ptr<cell[]> cells_;
  alignas(64) std::atomic<size_t> tail_{0};
  alignas(64) std::atomic<size_t> head_{0};
};

} // namespace mayfly
