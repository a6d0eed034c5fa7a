#include <mayfly/net/internal/uring_receiver.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#ifdef MAYFLY_HAVE_IO_URING

#include <sys/mman.h>

#include <liburing.h>

#include <mayfly/net/internal/admission.hpp>
#include <mayfly/net/internal/pktinfo.hpp>

namespace mayfly::detail {

namespace {

// The buffer group of the ring (one ring per io_uring instance).
constexpr int kGroup = 0;

/// The ring, its provided-buffer ring and the slots lent to the kernel.
struct ring_state {
  io_uring ring{};
  bool ring_ready = false;
  io_uring_buf_ring* br = nullptr;
  size_t br_bytes = 0;
  bool br_registered = false;
  uint32_t entries = 0;
  int fd = -1;
  buffer_pool* pool = nullptr;
  bool armed = false;
  int pending_adds = 0;             // buffers added since the last advance
  msghdr tmpl{};                    // name size for every datagram
  std::vector<mutable_buffer> bufs; // index: buffer id
  std::vector<io_uring_cqe*> cqes;
  std::vector<uint16_t> missing;    // buffer ids lent out, awaiting a slot

  ring_state() = default;
  ring_state(const ring_state&) = delete;
  ring_state& operator=(const ring_state&) = delete;

  ~ring_state() {
    // The ring first: after io_uring_queue_exit the kernel holds no request
    // that could write into a slot. Then the slots may go back (bufs).
    if (ring_ready) {
      if (br_registered)
        io_uring_unregister_buf_ring(&ring, kGroup);
      io_uring_queue_exit(&ring);
    }
    if (br != nullptr)
      munmap(br, br_bytes);
  }

  void give(uint16_t bid) noexcept {
    auto& b = bufs[bid];
    io_uring_buf_ring_add(br, b.data(), static_cast<unsigned>(b.capacity()),
                          bid, io_uring_buf_ring_mask(entries), pending_adds);
    ++pending_adds;
  }

  void publish() noexcept {
    if (pending_adds > 0) {
      io_uring_buf_ring_advance(br, pending_adds);
      pending_adds = 0;
    }
  }

  bool arm() noexcept {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    if (sqe == nullptr)
      return false;
    io_uring_prep_recvmsg_multishot(sqe, fd, &tmpl, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = kGroup;
    if (io_uring_submit(&ring) < 1)
      return false;
    armed = true;
    return true;
  }
};

class uring_receiver final : public receiver {
public:
  uring_receiver(const receiver_env& env, std::unique_ptr<ring_state> r)
    : env_(env), c_(*env.counters), r_(std::move(r)) {
  }

  receive_path kind() const noexcept override {
    return receive_path::io_uring;
  }

  int wait_fd() const noexcept override {
    return r_->ring.ring_fd;
  }

  recv_status receive(admission& to) noexcept override {
    auto& p = *r_;
    refill();
    rearm();
    unsigned n = io_uring_peek_batch_cqe(
      &p.ring, p.cqes.data(),
      static_cast<unsigned>(std::min<size_t>(env_.batch, p.cqes.size())));
    size_t delivered = 0;
    auto now = n > 0 ? steady_now_ns() : 0;
    for (unsigned i = 0; i < n; ++i) {
      datagram d;
      if (!take(p.cqes[i], d))
        continue;
      d.received_ns = now;
      ++delivered;
      to.admit(d);
    }
    io_uring_cq_advance(&p.ring, n);
    refill();
    rearm();
    if (n == 0)
      return starved() ? (c_.bump(pool_waits), recv_status::starved)
                       : recv_status::empty;
    if (delivered > 0)
      c_.bump(recv_calls);
    return recv_status::got;
  }

  void release_idle() noexcept override {
    // The ring's slots stay lent to the kernel: taking them back would
    // mean tearing down and re-registering the buffer ring.
  }

  int64_t discard_queued() noexcept override {
    // Completions not reaped yet hold datagrams the kernel already took
    // from the socket: count them, then tear the ring down (no request is
    // left to write into a slot) and count what the socket still holds.
    auto& p = *r_;
    int64_t left = 0;
    for (;;) {
      unsigned n = io_uring_peek_batch_cqe(&p.ring, p.cqes.data(),
                                           static_cast<unsigned>(p.cqes.size()));
      if (n == 0)
        break;
      for (unsigned i = 0; i < n; ++i) {
        auto* cqe = p.cqes[i];
        if (cqe->res >= 0 && (cqe->flags & IORING_CQE_F_BUFFER))
          ++left;
      }
      io_uring_cq_advance(&p.ring, n);
    }
    r_.reset();
    return left + drain_and_count(env_.fd);
  }

private:
  bool starved() const noexcept {
    return r_ && !r_->missing.empty();
  }

  /// Turns one completion into a datagram; false when it holds none
  /// (counted).
  bool take(io_uring_cqe* cqe, datagram& d) noexcept {
    auto& p = *r_;
    if (!(cqe->flags & IORING_CQE_F_MORE))
      p.armed = false;
    bool has_buffer = cqe->flags & IORING_CQE_F_BUFFER;
    auto bid = static_cast<uint16_t>(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
    if (cqe->res < 0 || !has_buffer || bid >= p.entries) {
      if (cqe->res == -ENOBUFS)
        c_.bump(uring_ring_empty);
      else if (cqe->res != -ECANCELED)
        c_.bump(recv_errors);
      if (has_buffer && bid < p.entries)
        p.give(bid); // unused: straight back into the ring
      return false;
    }
    auto* data = p.bufs[bid].data();
    auto* o = io_uring_recvmsg_validate(data, cqe->res, &p.tmpl);
    if (o == nullptr) {
      c_.bump(recv_errors);
      p.give(bid);
      return false;
    }
    if (o->flags & MSG_TRUNC) {
      c_.bump(truncated);
      p.give(bid); // the slot goes straight back into the ring
      return false;
    }
    socklen_t namelen = std::min<socklen_t>(o->namelen, p.tmpl.msg_namelen);
    d.peer = udp_address{static_cast<const sockaddr*>(io_uring_recvmsg_name(o)),
                         namelen};
    d.local = env_.local;
    if (env_.pktinfo) {
      bool known = false;
      for (auto* c = io_uring_recvmsg_cmsg_firsthdr(o, &p.tmpl); c != nullptr;
           c = io_uring_recvmsg_cmsg_nexthdr(o, &p.tmpl, c))
        known |= read_destination(*c, d.local);
      if (!known)
        c_.bump(pktinfo_missing); // answered from the default source
    }
    auto* payload = static_cast<std::byte*>(io_uring_recvmsg_payload(o, &p.tmpl));
    auto offset = static_cast<size_t>(payload - data);
    auto len = io_uring_recvmsg_payload_length(o, cqe->res, &p.tmpl);
    // The whole slot becomes the binary; the datagram is the slice past the
    // kernel's header. The ring gets a fresh slot in refill().
    d.payload = std::move(p.bufs[bid]).freeze(offset + len);
    d.payload.advance(offset);
    p.missing.push_back(bid);
    c_.bump(datagrams_in);
    c_.bump(bytes_in, static_cast<int64_t>(len));
    return true;
  }

  void refill() noexcept {
    auto& p = *r_;
    while (!p.missing.empty()) {
      auto bid = p.missing.back();
      p.bufs[bid] = p.pool->try_acquire();
      if (!p.bufs[bid]) {
        c_.bump(uring_refill_waits);
        break; // the loop looks again shortly (starved)
      }
      p.missing.pop_back();
      p.give(bid);
    }
    p.publish();
  }

  void rearm() noexcept {
    // The request ended (ring ran dry, or any other reason): start it again
    // as soon as the ring holds a buffer.
    auto& p = *r_;
    if (!p.armed && p.missing.size() < p.entries && p.arm())
      c_.bump(uring_rearms);
  }

  receiver_env env_;
  io_counters& c_;
  std::unique_ptr<ring_state> r_;
};

} // namespace

std::unique_ptr<receiver> make_uring_receiver(const receiver_env& env,
                                              std::string& why) {
  uint32_t entries = 2 * env.batch;
  uint32_t n = 1;
  while (n < entries && n < 32768)
    n <<= 1;
  auto p = std::make_unique<ring_state>();
  p->entries = n;
  p->fd = env.fd;
  p->pool = &env.pools->standard();
  io_uring_params params{};
  params.flags = IORING_SETUP_CQSIZE;
  params.cq_entries = 2 * n; // room for a full ring of completions, twice
  if (int rc = io_uring_queue_init_params(8, &p->ring, &params); rc < 0) {
    why = std::string{"io_uring_queue_init failed: "} + std::strerror(-rc);
    return nullptr;
  }
  p->ring_ready = true;
  // The buffer ring lives in memory we map (liburing 2.3 has no
  // io_uring_setup_buf_ring): one page-aligned array of n entries.
  p->br_bytes = sizeof(io_uring_buf) * n;
  void* mem = mmap(nullptr, p->br_bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    why = std::string{"no memory for the buffer ring: "} + std::strerror(errno);
    return nullptr;
  }
  p->br = static_cast<io_uring_buf_ring*>(mem);
  io_uring_buf_ring_init(p->br);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uint64_t>(p->br);
  reg.ring_entries = n;
  reg.bgid = kGroup;
  if (int rc = io_uring_register_buf_ring(&p->ring, &reg, 0); rc < 0) {
    why = std::string{"io_uring_register_buf_ring failed (kernel 5.19+ "
                      "needed): "}
          + std::strerror(-rc);
    return nullptr;
  }
  p->br_registered = true;
  p->bufs.resize(n);
  for (uint32_t i = 0; i < n; ++i) {
    p->bufs[i] = p->pool->try_acquire();
    if (!p->bufs[i]) {
      why = "the standard pool cannot lend " + std::to_string(n)
            + " slots to the buffer ring";
      return nullptr;
    }
    p->give(static_cast<uint16_t>(i));
  }
  p->publish();
  // The kernel lays out header, name area, control area (the destination
  // address on a wildcard socket, else none), payload back to back; keep
  // the name area aligned as cmsghdr needs.
  p->tmpl.msg_namelen = (udp_address::capacity() + alignof(cmsghdr) - 1)
                        & ~static_cast<socklen_t>(alignof(cmsghdr) - 1);
  p->tmpl.msg_controllen = env.pktinfo ? kPktinfoReceiveSpace : 0;
  p->cqes.resize(n);
  if (!p->arm()) {
    why = "no submission queue entry for the receive request";
    return nullptr;
  }
  // A kernel without multishot recvmsg (before 6.0) fails the request at
  // once: look for that completion now rather than at the first datagram.
  io_uring_cqe* cqe = nullptr;
  if (io_uring_peek_cqe(&p->ring, &cqe) == 0 && cqe != nullptr
      && cqe->res < 0 && cqe->res != -ENOBUFS) {
    why = std::string{"multishot recvmsg refused (kernel 6.0+ needed): "}
          + std::strerror(-cqe->res);
    return nullptr;
  }
  return std::make_unique<uring_receiver>(env, std::move(p));
}

} // namespace mayfly::detail

#else // !MAYFLY_HAVE_IO_URING

namespace mayfly::detail {

std::unique_ptr<receiver> make_uring_receiver(const receiver_env&,
                                              std::string& why) {
  why = "mayfly was built without liburing";
  return nullptr;
}

} // namespace mayfly::detail

#endif
