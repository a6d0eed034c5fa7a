#include <mayfly/net/internal/gro_receiver.hpp>

#include <netinet/in.h>
#include <netinet/udp.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include <mayfly/net/internal/admission.hpp>
#include <mayfly/net/internal/pktinfo.hpp>
#include <mayfly/net/internal/recv_batch.hpp>

namespace mayfly::detail {

namespace {

// Jumbo slots per recvmmsg (each holds up to 64 coalesced datagrams; more
// would tie up the shared jumbo class).
constexpr size_t kGroBatch = 8;
// Room for the UDP_GRO control message (an int) with slack.
constexpr size_t kControlBytes = 64;

class gro_receiver final : public recvmmsg_receiver<gro_receiver> {
public:
  gro_receiver(const receiver_env& env, size_t batch)
    : recvmmsg_receiver(env, *env.pools->jumbo(), batch,
                        kControlBytes
                          + (env.pktinfo ? kPktinfoReceiveSpace : 0)) {
  }

  receive_path kind() const noexcept override {
    return receive_path::gro;
  }

  /// Message i of the last read: one datagram or several coalesced ones.
  void deliver(size_t i, const recv_meta& meta, admission& to,
               int64_t now) noexcept {
    if (meta.truncated) {
      // Larger than a jumbo slot (only when jumbo slots are < 64 KiB): the
      // whole receive is dropped, counted once. The slot stays.
      c_.bump(truncated);
      return;
    }
    size_t len = meta.len;
    if (meta.control_truncated && len > 0) {
      // The segment size may be lost: splitting would guess, delivering
      // whole could hand on several datagrams as one. Counted.
      c_.bump(control_truncated);
      return;
    }
    datagram d = addressed(meta, now);
    // Without its destination address each datagram is still answered,
    // from the kernel's default source: counted per datagram below.
    const bool no_local = lacks_local(meta);
    size_t segment = meta.segment;
    if (segment == 0 || segment >= len) {
      // One datagram. A small one is copied into a standard slot (at most a
      // slot's bytes) so it does not pin 64 KiB while its handler runs; the
      // jumbo slot stays for the next round. A large one keeps its slot.
      c_.bump(datagrams_in);
      c_.bump(bytes_in, static_cast<int64_t>(len));
      if (no_local)
        c_.bump(pktinfo_missing);
      if (len <= standard_slot_) {
        auto small = env_.pools->standard().try_acquire();
        if (small) {
          if (len > 0)
            std::memcpy(small.data(), slots_[i].data(), len);
          d.payload = std::move(small).freeze(len);
          c_.bump(gro_copied);
          to.admit(d);
          return;
        }
      }
      d.payload = std::move(slots_[i]).freeze(len);
      to.admit(d);
      return;
    }
    // Several datagrams of one peer, back to back: one binary, one slice
    // (and one handler) per datagram. No copy.
    size_t count = (len + segment - 1) / segment;
    c_.bump(datagrams_in, static_cast<int64_t>(count));
    c_.bump(bytes_in, static_cast<int64_t>(len));
    c_.bump(gro_receives);
    c_.bump(gro_segments, static_cast<int64_t>(count));
    if (no_local)
      c_.bump(pktinfo_missing, static_cast<int64_t>(count));
    slice whole = std::move(slots_[i]).freeze(len);
    for (size_t off = 0; off < len; off += segment) {
      datagram part = addressed(meta, now);
      part.payload = whole.sub(off, std::min(len, off + segment));
      to.admit(part);
    }
  }
};

} // namespace

std::unique_ptr<receiver> make_gro_receiver(const receiver_env& env,
                                            std::string& why) {
  auto* jumbo = env.pools->jumbo();
  if (!env.gro_enabled) {
    why = "the kernel refused UDP_GRO";
    return nullptr;
  }
  if (jumbo == nullptr) {
    why = "no jumbo buffer class to receive into";
    return nullptr;
  }
  // At most kGroBatch jumbo slots per loop, and all loops together at most
  // half the jumbo class (the rest serves large replies).
  size_t batch = std::clamp<size_t>(
    jumbo->slots().capacity() / (2 * std::max<uint32_t>(env.loops, 1)), 1,
    std::min<size_t>(env.batch, kGroBatch));
  return std::make_unique<gro_receiver>(env, batch);
}

} // namespace mayfly::detail
