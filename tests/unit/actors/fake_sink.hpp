#pragma once

// An in-memory datagram_sink for actor tests: records every reply.

#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "actors/datagram.hpp"

namespace mayfly::test {

class fake_sink final : public datagram_sink {
public:
  struct sent {
    udp_address to;
    slice payload;
    bool copied;
  };

  bool send(const udp_address& to, slice payload) noexcept override {
    std::lock_guard<std::mutex> guard{mtx_};
    if (refuse_)
      return false;
    sent_.push_back({to, std::move(payload), false});
    return true;
  }

  bool send_copy(const udp_address& to,
                 std::string_view bytes) noexcept override {
    std::lock_guard<std::mutex> guard{mtx_};
    if (refuse_)
      return false;
    sent_.push_back({to, slice::copy_of(bytes), true});
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

} // namespace mayfly::test
