#include <mayfly/net/internal/reply_queue.hpp>

namespace mayfly::detail {

reply_queue::reply_queue(buffer_pools& pools, uint32_t capacity, waker& wake)
  : pools_(&pools),
    waker_(&wake),
    queue_(capacity),
    packers_(new packer_slot[kPackers]) {
}

bool reply_queue::post(const udp_address& to, slice payload,
                       const udp_address& from, uint32_t made) noexcept {
  if (closed_.load(std::memory_order_acquire)) {
    counters_.add(reply_after_close);
    return false;
  }
  transmit t{to, made, std::move(payload), from};
  if (!queue_.try_push(t)) {
    counters_.add(reply_queue_full);
    return false;
  }
  counters_.add(replies_queued);
  if (waker_->wake())
    counters_.add(wakeups);
  return true;
}

bool reply_queue::post_copy(const udp_address& to, std::string_view bytes,
                            const udp_address& from, uint32_t made) noexcept {
  if (closed_.load(std::memory_order_acquire)) {
    counters_.add(reply_after_close);
    return false;
  }
  slice packed;
  {
    auto i = this_thread_index() % kPackers;
    auto& slot = packers_[i];
    std::lock_guard<std::mutex> guard{slot.mtx};
    if (!slot.packer)
      slot.packer.emplace(*pools_);
    packed = slot.packer->pack(bytes);
    auto bit = uint64_t{1} << i;
    if (slot.packer->holding()
        && (holding_.load(std::memory_order_relaxed) & bit) == 0)
      holding_.fetch_or(bit, std::memory_order_relaxed);
  }
  if (!packed.has_owner()) {
    counters_.add(reply_no_buffer);
    return false;
  }
  return post(to, std::move(packed), from, made);
}

bool reply_queue::drain_into(replier& out) noexcept {
  bool moved = false;
  transmit t;
  while (out.has_room() && queue_.try_pop(t)) {
    out.add(t.to, std::move(t.payload), t.from, t.made);
    moved = true;
  }
  return moved;
}

void reply_queue::release_packers() noexcept {
  // Only the packers that took a buffer since the last release: usually
  // none (replies made on the IO thread use the replier's own packer).
  auto bits = holding_.exchange(0, std::memory_order_relaxed);
  while (bits != 0) {
    auto i = static_cast<size_t>(__builtin_ctzll(bits));
    bits &= bits - 1;
    std::lock_guard<std::mutex> guard{packers_[i].mtx};
    if (packers_[i].packer)
      packers_[i].packer->release();
  }
}

send_packer_counts reply_queue::packed() const noexcept {
  send_packer_counts total;
  for (size_t i = 0; i < kPackers; ++i) {
    std::lock_guard<std::mutex> guard{packers_[i].mtx};
    if (packers_[i].packer)
      total += packers_[i].packer->counts();
  }
  return total;
}

int64_t reply_queue::drop_all() noexcept {
  int64_t n = 0;
  transmit t;
  while (queue_.try_pop(t))
    ++n;
  for (size_t i = 0; i < kPackers; ++i) {
    std::lock_guard<std::mutex> guard{packers_[i].mtx};
    if (packers_[i].packer)
      packers_[i].packer->release(); // keeps its counts for the statistics
  }
  holding_.store(0, std::memory_order_relaxed);
  return n;
}

} // namespace mayfly::detail
