#pragma once

// `waker`: how other threads wake a sleeping IO loop (not installed).
//
// An eventfd and a `sleeping` flag. The loop announces that it is about to
// sleep (`about_to_sleep`), checks once more for work, then polls the
// eventfd with its socket; a thread that queued work calls `wake`, which
// writes the eventfd only when the loop said it sleeps (one write per
// sleep, however many threads reply: the first one clears the flag).
//
// Thread-safety: `wake` from any thread; the rest on the IO thread. Cost:
// `wake` is a fence and a load while the loop is awake; one write(2) when
// it sleeps.

#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

namespace mayfly::detail {

/// See file comment.
class waker {
public:
  waker() noexcept : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  }

  ~waker() {
    if (fd_ >= 0)
      ::close(fd_);
  }

  waker(const waker&) = delete;
  waker& operator=(const waker&) = delete;

  /// The eventfd to poll; -1 when none could be made (the loop then looks
  /// for work every millisecond instead of sleeping).
  int fd() const noexcept {
    return fd_;
  }

  /// Any thread, after queuing work: wakes the loop if it sleeps. True when
  /// this call wrote the eventfd.
  bool wake() noexcept {
    // Pairs with the fence in about_to_sleep(): either the loop sees the
    // work before sleeping, or we see it sleeping and write the eventfd.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (fd_ < 0 || !sleeping_.load(std::memory_order_relaxed)
        || !sleeping_.exchange(false, std::memory_order_relaxed))
      return false;
    uint64_t one = 1;
    [[maybe_unused]] auto rc = ::write(fd_, &one, sizeof(one));
    return true;
  }

  /// Wakes the loop whether or not it sleeps (stop, close, start).
  void force() noexcept {
    uint64_t one = 1;
    if (fd_ >= 0)
      [[maybe_unused]] auto rc = ::write(fd_, &one, sizeof(one));
  }

  /// IO thread: about to sleep; look for work once more after this.
  void about_to_sleep() noexcept {
    sleeping_.store(true, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }

  /// IO thread: awake again (after poll, or when work was found).
  void awake() noexcept {
    sleeping_.store(false, std::memory_order_relaxed);
  }

  /// IO thread: empties the eventfd after poll said it is readable.
  void consume() noexcept {
    uint64_t n;
    [[maybe_unused]] auto r = ::read(fd_, &n, sizeof(n));
  }

private:
  int fd_;
  std::atomic<bool> sleeping_{false};
};

} // namespace mayfly::detail
