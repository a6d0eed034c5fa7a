#include <mayfly/net/internal/uring_receiver.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>

#ifdef MAYFLY_HAVE_IO_URING

#include <sys/mman.h>

#include <liburing.h>

namespace mayfly::detail {

namespace {

// Control room per datagram: SO_RXQ_OVFL (24 bytes) with slack.
constexpr socklen_t kControlBytes = 64;
// The buffer group of the ring (one ring per io_uring instance).
constexpr int kGroup = 0;

} // namespace

struct uring_receiver::impl {
  io_uring ring{};
  bool ring_ready = false;
  io_uring_buf_ring* br = nullptr;
  size_t br_bytes = 0;
  bool br_registered = false;
  uint32_t entries = 0;
  int fd = -1;
  buffer_pool* pool = nullptr;
  bool armed = false;
  int pending_adds = 0;          // buffers added since the last advance
  msghdr tmpl{};                 // name and control sizes for every datagram
  std::vector<mutable_buffer> bufs; // index: buffer id
  std::vector<io_uring_cqe*> cqes;

  ~impl() {
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
};

uring_receiver::uring_receiver(std::unique_ptr<impl> p) noexcept
  : impl_(std::move(p)) {
}

uring_receiver::~uring_receiver() = default;

int uring_receiver::fd() const noexcept {
  return impl_->ring.ring_fd;
}

std::unique_ptr<uring_receiver>
uring_receiver::make(int fd, buffer_pool& pool, uint32_t entries,
                     std::string& why) noexcept {
  uint32_t n = 1;
  while (n < entries && n < 32768)
    n <<= 1;
  auto p = std::make_unique<impl>();
  p->entries = n;
  p->fd = fd;
  p->pool = &pool;
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
    p->bufs[i] = pool.try_acquire();
    if (!p->bufs[i]) {
      why = "the standard pool cannot lend " + std::to_string(n)
            + " slots to the buffer ring";
      return nullptr;
    }
    p->give(static_cast<uint16_t>(i));
  }
  p->publish();
  // The kernel lays out header, name area, control area, payload back to
  // back; a name area of 28 bytes would leave the control messages
  // misaligned for cmsghdr. Round it up to cmsghdr's alignment.
  p->tmpl.msg_namelen = (udp_address::capacity() + alignof(cmsghdr) - 1)
                        & ~static_cast<socklen_t>(alignof(cmsghdr) - 1);
  p->tmpl.msg_controllen = kControlBytes;
  p->cqes.resize(n);
  std::unique_ptr<uring_receiver> r{new uring_receiver(std::move(p))};
  if (!r->arm()) {
    why = "no submission queue entry for the receive request";
    return nullptr;
  }
  // A kernel without multishot recvmsg (before 6.0) fails the request at
  // once: look for that completion now rather than at the first datagram.
  io_uring_cqe* cqe = nullptr;
  if (io_uring_peek_cqe(&r->impl_->ring, &cqe) == 0 && cqe != nullptr
      && cqe->res < 0 && cqe->res != -ENOBUFS) {
    why = std::string{"multishot recvmsg refused (kernel 6.0+ needed): "}
          + std::strerror(-cqe->res);
    return nullptr;
  }
  return r;
}

bool uring_receiver::arm() noexcept {
  auto& p = *impl_;
  io_uring_sqe* sqe = io_uring_get_sqe(&p.ring);
  if (sqe == nullptr)
    return false;
  io_uring_prep_recvmsg_multishot(sqe, p.fd, &p.tmpl, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = kGroup;
  if (io_uring_submit(&p.ring) < 1)
    return false;
  p.armed = true;
  return true;
}

void uring_receiver::refill(uring_counts& counts) noexcept {
  auto& p = *impl_;
  while (!missing_.empty()) {
    auto bid = missing_.back();
    p.bufs[bid] = p.pool->try_acquire();
    if (!p.bufs[bid]) {
      ++counts.refill_waits;
      break; // the loop looks again shortly (starved())
    }
    missing_.pop_back();
    p.give(bid);
  }
  p.publish();
}

size_t uring_receiver::reap(uring_datagram* out, size_t max,
                            uring_counts& counts) noexcept {
  auto& p = *impl_;
  refill(counts);
  if (!p.armed && missing_.size() < p.entries) {
    // The request ended (ring ran dry, or any other reason): start it again
    // as soon as the ring holds a buffer.
    if (arm())
      ++counts.rearms;
  }
  max = std::min(max, p.cqes.size());
  unsigned n = io_uring_peek_batch_cqe(&p.ring, p.cqes.data(),
                                       static_cast<unsigned>(max));
  size_t k = 0;
  for (unsigned i = 0; i < n; ++i) {
    auto* cqe = p.cqes[i];
    if (!(cqe->flags & IORING_CQE_F_MORE))
      p.armed = false;
    bool has_buffer = cqe->flags & IORING_CQE_F_BUFFER;
    auto bid = static_cast<uint16_t>(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
    if (cqe->res < 0 || !has_buffer || bid >= p.entries) {
      if (cqe->res == -ENOBUFS)
        ++counts.ring_empty;
      else if (cqe->res != -ECANCELED)
        ++counts.errors;
      if (has_buffer && bid < p.entries)
        p.give(bid); // unused: straight back into the ring
      continue;
    }
    auto* data = p.bufs[bid].data();
    auto* o = io_uring_recvmsg_validate(data, cqe->res, &p.tmpl);
    if (o == nullptr) {
      ++counts.errors;
      p.give(bid);
      continue;
    }
    auto& d = out[k++];
    d = uring_datagram{};
    for (auto* c = io_uring_recvmsg_cmsg_firsthdr(o, &p.tmpl); c != nullptr;
         c = io_uring_recvmsg_cmsg_nexthdr(o, &p.tmpl, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
        std::memcpy(&d.drops_total, CMSG_DATA(c), sizeof(d.drops_total));
        d.has_drops = true;
      }
    }
    if (o->flags & MSG_TRUNC) {
      d.truncated = true;
      p.give(bid); // the slot goes straight back into the ring
      continue;
    }
    socklen_t namelen = std::min<socklen_t>(o->namelen, p.tmpl.msg_namelen);
    d.peer = udp_address{static_cast<const sockaddr*>(io_uring_recvmsg_name(o)),
                         namelen};
    auto* payload = static_cast<std::byte*>(io_uring_recvmsg_payload(o, &p.tmpl));
    auto offset = static_cast<size_t>(payload - data);
    auto len = io_uring_recvmsg_payload_length(o, cqe->res, &p.tmpl);
    // The whole slot becomes the binary; the datagram is the slice past the
    // kernel's header. The ring gets a fresh slot in refill().
    d.payload = std::move(p.bufs[bid]).freeze(offset + len);
    d.payload.advance(offset);
    missing_.push_back(bid);
  }
  io_uring_cq_advance(&p.ring, n);
  refill(counts);
  if (!p.armed && missing_.size() < p.entries && arm())
    ++counts.rearms;
  return k;
}

} // namespace mayfly::detail

#else // !MAYFLY_HAVE_IO_URING

namespace mayfly::detail {

struct uring_receiver::impl {};

uring_receiver::uring_receiver(std::unique_ptr<impl> p) noexcept
  : impl_(std::move(p)) {
}

uring_receiver::~uring_receiver() = default;

int uring_receiver::fd() const noexcept {
  return -1;
}

std::unique_ptr<uring_receiver> uring_receiver::make(int, buffer_pool&,
                                                     uint32_t,
                                                     std::string& why) noexcept {
  why = "mayfly was built without liburing";
  return nullptr;
}

bool uring_receiver::arm() noexcept {
  return false;
}

void uring_receiver::refill(uring_counts&) noexcept {
}

size_t uring_receiver::reap(uring_datagram*, size_t, uring_counts&) noexcept {
  return 0;
}

} // namespace mayfly::detail

#endif
