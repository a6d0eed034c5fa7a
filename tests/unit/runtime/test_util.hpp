#pragma once

// Helpers shared by the runtime unit tests: small pools (fast to map, exact
// exhaustion) and a blocking ring for handing values between threads without
// allocating.

#include <array>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include <mayfly/runtime/arena.hpp>
#include <mayfly/runtime/buffer_pool.hpp>
#include <mayfly/runtime/slice.hpp>
#include <mayfly/runtime/slot_pool.hpp>

namespace mayfly {

/// Lets GoogleTest print slices as text in failure messages.
inline void PrintTo(const slice& s, std::ostream* os) {
  *os << '"' << s.view() << "\" (" << s.size() << " bytes, "
      << (s.has_owner() ? "owned" : "ownerless") << ')';
}

} // namespace mayfly

namespace mayfly::test {

/// Options of a small slot pool: no huge pages, no prefault (fast to map).
inline slot_pool::options pool_options(uint32_t capacity,
                                       size_t slot_size = 256,
                                       std::string name = "test") {
  slot_pool::options opts;
  opts.name = std::move(name);
  opts.slot_size = slot_size;
  opts.capacity = capacity;
  opts.huge_pages = false;
  opts.prefault = false;
  return opts;
}

/// A slot pool, or null (the caller asserts).
inline std::unique_ptr<slot_pool> make_slot_pool(uint32_t capacity,
                                                 size_t slot_size = 256) {
  auto res = slot_pool::make(pool_options(capacity, slot_size));
  return res ? std::move(*res) : nullptr;
}

/// A buffer pool, or null (the caller asserts).
inline std::unique_ptr<buffer_pool> make_buffer_pool(uint32_t capacity,
                                                     size_t slot_size = 256) {
  auto res = buffer_pool::make(pool_options(capacity, slot_size, "standard"));
  return res ? std::move(*res) : nullptr;
}

/// Standard and jumbo classes small enough for unit tests.
inline buffer_pools_config small_pools_config(uint32_t standard_capacity = 8,
                                              uint32_t jumbo_capacity = 2) {
  buffer_pools_config cfg;
  cfg.standard_slot_size = 256;
  cfg.standard_capacity = standard_capacity;
  cfg.jumbo_slot_size = 1024;
  cfg.jumbo_capacity = jumbo_capacity;
  cfg.huge_pages = false;
  cfg.prefault = false;
  return cfg;
}

inline std::unique_ptr<buffer_pools>
make_pools(buffer_pools_config cfg = small_pools_config()) {
  auto res = buffer_pools::make(cfg);
  return res ? std::move(*res) : nullptr;
}

inline arena_pool_config small_arena_config(uint32_t capacity = 8,
                                            size_t block_size = 4096,
                                            size_t max_arena_bytes = 65536) {
  arena_pool_config cfg;
  cfg.block_size = block_size;
  cfg.capacity = capacity;
  cfg.max_arena_bytes = max_arena_bytes;
  cfg.huge_pages = false;
  cfg.prefault = false;
  return cfg;
}

inline std::unique_ptr<arena_pool>
make_arena_pool(arena_pool_config cfg = small_arena_config()) {
  auto res = arena_pool::make(cfg);
  return res ? std::move(*res) : nullptr;
}

/// Copies `text` into a fresh binary of `pool` and freezes it; an empty,
/// ownerless slice if the pool is exhausted.
inline slice frozen(buffer_pool& pool, std::string_view text) {
  auto buf = pool.try_acquire();
  if (!buf || buf.capacity() < text.size())
    return {};
  if (!text.empty())
    std::memcpy(buf.data(), text.data(), text.size());
  return std::move(buf).freeze(text.size());
}

/// Calls `fn` until it returns true, yielding between attempts, at most
/// `limit` times; returns whether it succeeded. For lock-free handoffs, so
/// that a lost peer fails the test instead of hanging it.
template <class F>
bool retry(F&& fn, uint64_t limit = 100'000'000) {
  for (uint64_t i = 0; i < limit; ++i) {
    if (fn())
      return true;
    std::this_thread::yield();
  }
  return false;
}

/// A bounded FIFO between threads: fixed storage, a mutex and two condition
/// variables. Push blocks while full, pop blocks while empty; neither
/// allocates (glibc's mutex and condition variable do not).
template <class T, size_t N>
class blocking_ring {
public:
  void push(T value) {
    std::unique_lock<std::mutex> lock{mtx_};
    not_full_.wait(lock, [this] { return count_ < N; });
    items_[(head_ + count_) % N] = std::move(value);
    ++count_;
    not_empty_.notify_one();
  }

  T pop() {
    std::unique_lock<std::mutex> lock{mtx_};
    not_empty_.wait(lock, [this] { return count_ > 0; });
    T value = std::move(items_[head_]);
    items_[head_] = T{};
    head_ = (head_ + 1) % N;
    --count_;
    not_full_.notify_one();
    return value;
  }

private:
  std::mutex mtx_;
  std::condition_variable not_full_;
  std::condition_variable not_empty_;
  std::array<T, N> items_{};
  size_t head_ = 0;
  size_t count_ = 0;
};

} // namespace mayfly::test
