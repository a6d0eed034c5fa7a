#include <mayfly/actors/barrier.hpp>

namespace mayfly {

uint64_t order_gate::request() noexcept {
  std::lock_guard<std::mutex> guard{mtx_};
  if (!draining_) {
    flip();
    return flips_;
  }
  // A grace period is under way; handlers admitted before this call may be
  // in the new bucket too: wait for the next one, which starts when this
  // one ends (every request meanwhile shares it).
  next_wanted_ = true;
  return flips_ + 1;
}

bool order_gate::passed(uint64_t target) noexcept {
  std::lock_guard<std::mutex> guard{mtx_};
  while (draining_) {
    auto old_bucket = static_cast<size_t>((flips_ - 1) & 1);
    if (live_.sum(old_bucket) != 0)
      break;
    // Pairs with the release fence in `leave`.
    std::atomic_thread_fence(std::memory_order_acquire);
    completed_ = flips_;
    draining_ = false;
    if (next_wanted_) {
      next_wanted_ = false;
      flip(); // and check it at once: it may be empty already
    }
  }
  return completed_ >= target;
}

void order_gate::flip() noexcept {
  epoch_.fetch_add(1, std::memory_order_seq_cst);
  // Pairs with the fence in `enter`: an admission that did not see this
  // flip has its add visible to the reads of the old bucket.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  ++flips_;
  draining_ = true;
}

} // namespace mayfly
