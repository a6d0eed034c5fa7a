#pragma once

// In-memory datagram_sinks for actor tests: one records every reply, one
// only counts them.

#include <atomic>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <mayfly/actors/datagram.hpp>

namespace mayfly::test {

class fake_sink final : public datagram_sink {
public:
  struct sent {
    udp_address to;
    slice payload;
    bool copied;
  };

  bool send(const datagram& request, slice payload,
            const caf::execution_unit*) noexcept override {
    std::lock_guard<std::mutex> guard{mtx_};
    if (refuse_)
      return false;
    sent_.push_back({request.peer, std::move(payload), false});
    return true;
  }

  bool send_copy(const datagram& request, std::string_view bytes,
                 const caf::execution_unit*) noexcept override {
    std::lock_guard<std::mutex> guard{mtx_};
    if (refuse_)
      return false;
    sent_.push_back({request.peer, slice::copy_of(bytes), true});
    return true;
  }

  void refuse(bool x) {
    std::lock_guard<std::mutex> guard{mtx_};
    refuse_ = x;
  }

  /// Takes the recorded replies (the caller drops them: balances).
  std::vector<sent> take() {
    std::lock_guard<std::mutex> guard{mtx_};
    return std::exchange(sent_, {});
  }

  size_t size() {
    std::lock_guard<std::mutex> guard{mtx_};
    return sent_.size();
  }

private:
  std::mutex mtx_;
  std::vector<sent> sent_;
  bool refuse_ = false;
};

/// Drops replies and counts them, without allocating (for allocation
/// counts, where fake_sink's recording would allocate).
struct counting_sink final : datagram_sink {
  std::atomic<int64_t> replies{0};
  bool send(const datagram&, slice,
            const caf::execution_unit*) noexcept override {
    replies.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  bool send_copy(const datagram&, std::string_view,
                 const caf::execution_unit*) noexcept override {
    replies.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
};

} // namespace mayfly::test
