#include <mayfly/actors/detach_policy.hpp>

#include <algorithm>
#include <cstring>

#include <mayfly/actors/fanout.hpp>
#include <mayfly/actors/messages.hpp>
#include <mayfly/runtime/buffer_pool.hpp>

namespace mayfly {

detach_policy::detach_policy(detach_config cfg) noexcept : cfg_(cfg) {
}

// -- the table of long-lived actors ---------------------------------------------------

size_t detach_policy::home(const caf::actor_control_block* ctrl) noexcept {
  static_assert((kTableSize & (kTableSize - 1)) == 0, "a power of two");
  auto x = reinterpret_cast<uintptr_t>(ctrl) >> 4; // control blocks align
  return static_cast<size_t>((x * 0x9e3779b97f4a7c15ull) >> 32)
         & (kTableSize - 1);
}

uint32_t
detach_policy::lookup(const caf::actor_control_block* ctrl) const noexcept {
  if (ctrl == nullptr)
    return 0;
  // A sequence lock: retry when a writer changed the table meanwhile (rare:
  // actors are marked and exit seldom). No lock, no allocation.
  for (;;) {
    auto before = seq_.load(std::memory_order_acquire);
    if ((before & 1) != 0)
      continue; // a writer is in the middle of it
    uint32_t tag = 0;
    auto i = home(ctrl);
    for (size_t n = 0; n < kTableSize; ++n, i = (i + 1) & (kTableSize - 1)) {
      auto* at = table_[i].ctrl.load(std::memory_order_relaxed);
      if (at == nullptr)
        break;
      if (at == ctrl) {
        tag = table_[i].tag.load(std::memory_order_relaxed);
        break;
      }
    }
    std::atomic_thread_fence(std::memory_order_acquire);
    if (seq_.load(std::memory_order_relaxed) == before)
      return tag;
  }
}

bool detach_policy::mark(const caf::actor_control_block* ctrl, uint32_t tag) {
  MAYFLY_ASSERT(ctrl != nullptr && tag != 0);
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = home(ctrl);
  while (true) {
    auto* at = table_[i].ctrl.load(std::memory_order_relaxed);
    if (at == ctrl || at == nullptr)
      break;
    i = (i + 1) & (kTableSize - 1);
  }
  bool fresh = table_[i].ctrl.load(std::memory_order_relaxed) == nullptr;
  if (fresh && marked_.load(std::memory_order_relaxed) >= kMaxLongLived) {
    counters_.add(mark_refused);
    return false;
  }
  auto s = seq_.load(std::memory_order_relaxed);
  seq_.store(s + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  table_[i].tag.store(tag, std::memory_order_relaxed);
  table_[i].ctrl.store(ctrl, std::memory_order_relaxed);
  seq_.store(s + 2, std::memory_order_release);
  if (fresh)
    marked_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void detach_policy::unmark(const caf::actor_control_block* ctrl) noexcept {
  std::lock_guard<std::mutex> guard{mtx_};
  constexpr size_t mask = kTableSize - 1;
  auto i = home(ctrl);
  for (size_t n = 0;; ++n, i = (i + 1) & mask) {
    auto* at = table_[i].ctrl.load(std::memory_order_relaxed);
    if (at == nullptr || n == kTableSize)
      return; // not marked
    if (at == ctrl)
      break;
  }
  auto s = seq_.load(std::memory_order_relaxed);
  seq_.store(s + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  // Backward-shift deletion: move later entries of the probe chain into the
  // hole unless their home lies cyclically in (hole, them].
  for (auto j = (i + 1) & mask;; j = (j + 1) & mask) {
    auto* at = table_[j].ctrl.load(std::memory_order_relaxed);
    if (at == nullptr)
      break;
    auto k = home(at);
    bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
    if (stays)
      continue;
    table_[i].tag.store(table_[j].tag.load(std::memory_order_relaxed),
                        std::memory_order_relaxed);
    table_[i].ctrl.store(at, std::memory_order_relaxed);
    i = j;
  }
  table_[i].ctrl.store(nullptr, std::memory_order_relaxed);
  table_[i].tag.store(0, std::memory_order_relaxed);
  seq_.store(s + 2, std::memory_order_release);
  marked_.fetch_sub(1, std::memory_order_relaxed);
}

// -- applying the rule ----------------------------------------------------------------

void detach_policy::record_copy(const slice& original, uint32_t tag,
                                size_t bytes, bool copied) noexcept {
  if (!copied) {
    counters_.add(detach_failures); // the allocator refused: sent as is
    original.mark_holder(tag);
    original.mark_flags(detail::sent_to_holder);
    return;
  }
  original.mark_flags(detail::detached_for_holder);
  counters_.add(slices_detached);
  counters_.add(bytes_copied, static_cast<int64_t>(bytes));
}

void detach_policy::record_as_is(const slice& s, uint32_t tag) noexcept {
  s.mark_holder(tag);
  s.mark_flags(detail::sent_to_holder);
  counters_.add(sent_as_is);
}

slice detach_policy::prepare(uint32_t tag, slice s) noexcept {
  if (!s.has_owner())
    return s;
  if (!applies(s)) {
    record_as_is(s, tag);
    return s;
  }
  auto copy = s.detach(); // an empty slice for an empty view: pins nothing
  bool copied = copy.has_owner() || s.size() == 0;
  record_copy(s, tag, s.size(), copied);
  return copied ? copy : s;
}

void detach_policy::prepare(uint32_t tag, key_batch& b) noexcept {
  auto& src = b.source;
  if (b.size == 0 || !src.has_owner())
    return;
  size_t keys = 0;
  for (auto& item : b.view())
    keys += item.length;
  if (!cfg_.enabled || keys > cfg_.max_slice_bytes
      || src.pinned_bytes() < cfg_.min_binary_bytes) {
    record_as_is(src, tag);
    return;
  }
  // Pack the keys into one dedicated binary and rebase their offsets.
  slice copy;
  if (keys > 0) {
    auto buf = mutable_buffer::dedicated(keys);
    if (!buf) {
      record_copy(src, tag, keys, false);
      return;
    }
    uint32_t at = 0;
    for (size_t i = 0; i < b.size; ++i) {
      auto& item = b.items[i];
      std::memcpy(buf.data() + at, src.data() + item.offset, item.length);
      item.offset = at;
      at += item.length;
    }
    copy = std::move(buf).freeze(keys);
  } else {
    for (size_t i = 0; i < b.size; ++i)
      b.items[i].offset = 0;
  }
  record_copy(src, tag, keys, true);
  src = std::move(copy);
}

void detach_policy::prepare(uint32_t tag, slice_batch& b) noexcept {
  for (size_t i = 0; i < b.size; ++i)
    b.items[i].key = prepare(tag, std::move(b.items[i].key));
}

nlohmann::json detach_policy::stats() const {
  nlohmann::json out = {
    {"enabled", cfg_.enabled},
    {"max_slice_bytes", cfg_.max_slice_bytes},
    {"min_binary_bytes", cfg_.min_binary_bytes},
    {"long_lived", marked()},
  };
#define MAYFLY_X(name, kind, unit, help) out[#name] = count(name);
  MAYFLY_DETACH_COUNTERS(MAYFLY_X)
#undef MAYFLY_X
  return out;
}

} // namespace mayfly
