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

class mmsg_receiver final : public recvmmsg_receiver<mmsg_receiver> {
public:
  explicit mmsg_receiver(const receiver_env& env)
    : recvmmsg_receiver(env, env.pools->standard(), env.batch,
                        env.pktinfo ? kPktinfoReceiveSpace : 0) {
    size_t spill_size = standard_slot_ < kMaxUdpPayload
                          ? kMaxUdpPayload - standard_slot_
                          : 0;
    if (spill_size > 0) {
      // Scratch that catches the tails of datagrams larger than a slot: one
      // region for the receiver's life, never handed out (large datagrams
      // are copied into a jumbo binary).
      void* mem = mmap(nullptr, spill_size * env.batch, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (mem != MAP_FAILED) {
        spill_ = static_cast<std::byte*>(mem);
        spill_size_ = spill_size;
      } else {
        std::fprintf(stderr, "mayfly: no memory for the receive spill area: "
                             "datagrams larger than %zu bytes will be "
                             "counted as truncated\n",
                     standard_slot_);
      }
    }
  }

  ~mmsg_receiver() override {
    if (spill_ != nullptr)
      munmap(spill_, spill_size_ * env_.batch);
  }

  receive_path kind() const noexcept override {
    return receive_path::recvmmsg;
  }

  /// Message i of the last read: one datagram, in its slot or spilled.
  void deliver(size_t i, const recv_meta& meta, admission& to,
               int64_t now) noexcept {
    if (meta.truncated) {
      c_.bump(truncated); // the slot stays for the next batch
      return;
    }
    // MSG_CTRUNC can only cost the destination address (pktinfo_missing
    // below); the payload is whole either way.
    size_t len = meta.len;
    c_.bump(datagrams_in);
    c_.bump(bytes_in, static_cast<int64_t>(len));
    datagram d = addressed(meta, now);
    if (len <= standard_slot_) {
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
      std::memcpy(big.data(), slots_[i].data(), standard_slot_);
      std::memcpy(big.data() + standard_slot_, spill_ + i * spill_size_,
                  len - standard_slot_);
      d.payload = std::move(big).freeze(len);
      c_.bump(spilled);
    }
    if (lacks_local(meta))
      c_.bump(pktinfo_missing);
    to.admit(d);
  }
};

} // namespace

std::unique_ptr<receiver> make_mmsg_receiver(const receiver_env& env) {
  return std::make_unique<mmsg_receiver>(env);
}

} // namespace mayfly::detail
