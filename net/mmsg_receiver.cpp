#include <mayfly/net/internal/mmsg_receiver.hpp>

#include <sys/mman.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include <mayfly/net/internal/admission.hpp>
#include <mayfly/net/internal/pktinfo.hpp>
#include <mayfly/net/internal/recv_batch.hpp>

namespace mayfly::detail {

namespace {

constexpr size_t kMaxUdpPayload = 65535;

class mmsg_receiver final : public receiver {
public:
  explicit mmsg_receiver(const receiver_env& env)
    : env_(env),
      c_(*env.counters),
      slot_size_(env.pools->standard().slot_size()),
      spill_size_(slot_size_ < kMaxUdpPayload ? kMaxUdpPayload - slot_size_
                                              : 0),
      batch_(env.batch, env.pktinfo ? kPktinfoReceiveSpace : 0, env.local),
      slots_(env.batch) {
    if (spill_size_ > 0) {
      // Scratch that catches the tails of datagrams larger than a slot: one
      // region for the receiver's life, never handed out (large datagrams
      // are copied into a jumbo binary).
      void* mem = mmap(nullptr, spill_size_ * env.batch, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      spill_ = mem == MAP_FAILED ? nullptr : static_cast<std::byte*>(mem);
      if (spill_ == nullptr)
        std::fprintf(stderr, "mayfly: no memory for the receive spill area: "
                             "datagrams larger than %zu bytes will be "
                             "counted as truncated\n",
                     slot_size_);
    }
  }

  ~mmsg_receiver() override {
    if (spill_ != nullptr)
      munmap(spill_, spill_size_ * env_.batch);
  }

  receive_path kind() const noexcept override {
    return receive_path::recvmmsg;
  }

  int wait_fd() const noexcept override {
    return env_.fd;
  }

  recv_status receive(admission& to) noexcept override {
    recv_status status;
    size_t n = batch_.read(*env_.calls, env_.fd, env_.pools->standard(),
                           slots_, spill_, spill_size_, c_, status);
    auto now = n > 0 ? steady_now_ns() : 0;
    for (size_t i = 0; i < n; ++i)
      deliver(i, to, now);
    return status;
  }

  void release_idle() noexcept override {
    for (auto& s : slots_)
      s = mutable_buffer{};
  }

  int64_t discard_queued() noexcept override {
    release_idle();
    return drain_and_count(env_.fd);
  }

private:

  void deliver(size_t i, admission& to, int64_t now) noexcept {
    auto meta = batch_.meta(i);
    if (meta.truncated) {
      c_.bump(truncated); // the slot stays for the next batch
      return;
    }
    // MSG_CTRUNC can only cost the destination address (pktinfo_missing
    // below); the payload is whole either way.
    size_t len = meta.len;
    c_.bump(datagrams_in);
    c_.bump(bytes_in, static_cast<int64_t>(len));
    datagram d;
    if (len <= slot_size_) {
      d.payload = std::move(slots_[i]).freeze(len);
    } else {
      auto* jumbo = env_.pools->jumbo();
      auto big = jumbo != nullptr && len <= jumbo->slot_size()
                   ? jumbo->try_acquire()
                   : mutable_buffer{};
      if (!big) {
        c_.bump(large_drops);
        return;
      }
      std::memcpy(big.data(), slots_[i].data(), slot_size_);
      std::memcpy(big.data() + slot_size_, spill_ + i * spill_size_,
                  len - slot_size_);
      d.payload = std::move(big).freeze(len);
      c_.bump(spilled);
    }
    d.peer = meta.peer;
    d.local = meta.local;
    if (env_.pktinfo && !meta.local_known)
      c_.bump(pktinfo_missing);
    d.received_ns = now;
    to.admit(d);
  }

  receiver_env env_;
  io_counters& c_;
  size_t slot_size_;
  size_t spill_size_;
  std::byte* spill_ = nullptr; // batch * spill_size_ bytes, mmap'd
  recv_batch batch_;
  std::vector<mutable_buffer> slots_;
};

} // namespace

std::unique_ptr<receiver> make_mmsg_receiver(const receiver_env& env) {
  return std::make_unique<mmsg_receiver>(env);
}

} // namespace mayfly::detail
