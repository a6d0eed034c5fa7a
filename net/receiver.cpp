// The receive paths' common parts: the recvmmsg platform layer
// (recv_batch), the choice of a path, and counting what a socket still
// holds at close.

#include <mayfly/net/internal/receiver.hpp>

#include <netinet/in.h>
#include <netinet/udp.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include <mayfly/net/internal/gro_receiver.hpp>
#include <mayfly/net/internal/mmsg_receiver.hpp>
#include <mayfly/net/internal/pktinfo.hpp>
#include <mayfly/net/internal/recv_batch.hpp>
#include <mayfly/net/internal/uring_receiver.hpp>

namespace mayfly::detail {

receiver::~receiver() = default;

namespace {

/// If `c` is the UDP_GRO control message, the segment size it holds (the
/// size of each coalesced datagram; the last may be shorter; 0 if
/// unusable) into `segment`, and true.
bool read_gro_segment(cmsghdr* c, size_t& segment) noexcept {
  if (c->cmsg_level != IPPROTO_UDP || c->cmsg_type != UDP_GRO)
    return false;
  int size;
  std::memcpy(&size, CMSG_DATA(c), sizeof(size));
  segment = size > 0 ? static_cast<size_t>(size) : 0;
  return true;
}

/// The UDP_GRO segment size in `hdr`'s control messages, or 0.
size_t gro_segment(msghdr& hdr) noexcept {
  size_t segment = 0;
  for (auto* c = CMSG_FIRSTHDR(&hdr); c != nullptr; c = CMSG_NXTHDR(&hdr, c))
    if (read_gro_segment(c, segment))
      break;
  return segment;
}

} // namespace

int64_t steady_now_ns() noexcept {
  using namespace std::chrono;
  return duration_cast<nanoseconds>(steady_clock::now().time_since_epoch())
    .count();
}

// -- recv_batch ---------------------------------------------------------------------

recv_batch::recv_batch(size_t n, size_t control, const udp_address& local)
  : control_(control),
    local_(local),
    msgs_(n),
    iovs_(2 * n),
    names_(n),
    controls_(control * n) {
}

void recv_batch::set(size_t i, iovec first, iovec second) noexcept {
  auto& hdr = msgs_[i].msg_hdr;
  iovs_[2 * i] = first;
  iovs_[2 * i + 1] = second;
  hdr.msg_iov = &iovs_[2 * i];
  hdr.msg_iovlen = second.iov_len > 0 ? 2 : 1;
  hdr.msg_name = names_[i].sockaddr_ptr();
  hdr.msg_namelen = udp_address::capacity();
  hdr.msg_control = control_ > 0 ? controls_.data() + i * control_ : nullptr;
  hdr.msg_controllen = control_;
  hdr.msg_flags = 0;
  msgs_[i].msg_len = 0;
}

size_t recv_batch::read(const socket_calls& calls, int fd, buffer_pool& pool,
                        std::vector<mutable_buffer>& slots, std::byte* spill,
                        size_t spill_size, io_counters& counters,
                        recv_status& status) noexcept {
  size_t k = 0;
  for (; k < slots.size(); ++k) {
    if (!slots[k]) {
      slots[k] = pool.try_acquire();
      if (!slots[k])
        break;
    }
    set(k, {slots[k].data(), slots[k].capacity()},
        {spill != nullptr ? spill + k * spill_size : nullptr,
         spill != nullptr ? spill_size : 0});
  }
  if (k == 0) {
    counters.bump(pool_waits);
    status = recv_status::starved;
    return 0;
  }
  int n = calls.recvmmsg(fd, msgs_.data(), static_cast<unsigned>(k));
  status = recv_status::got;
  if (n < 0) {
    if (n == -EAGAIN || n == -EWOULDBLOCK) {
      status = recv_status::empty;
      return 0;
    }
    // EINTR: try again at once. Anything else (ECONNREFUSED after an ICMP
    // error for an earlier reply, ENOBUFS...) reports an error and
    // consumes no datagram: counted, and the next round reads on.
    if (n != -EINTR)
      counters.bump(recv_errors);
    return 0;
  }
  counters.bump(recv_calls);
  return static_cast<size_t>(n);
}

recv_meta recv_batch::meta(size_t i) const noexcept {
  auto& msg = msgs_[i];
  auto& hdr = msg.msg_hdr;
  recv_meta m;
  m.peer = names_[i];
  m.len = msg.msg_len;
  m.truncated = (hdr.msg_flags & MSG_TRUNC) != 0;
  m.control_truncated = (hdr.msg_flags & MSG_CTRUNC) != 0;
  m.local = local_;
  if (control_ > 0) {
    auto& h = const_cast<msghdr&>(hdr);
    for (auto* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(&h, c)) {
      if (!read_gro_segment(c, m.segment) && read_destination(*c, m.local))
        m.local_known = true;
    }
  }
  return m;
}

// -- choosing a path ----------------------------------------------------------------

std::unique_ptr<receiver> make_receiver(receive_path asked,
                                        const receiver_env& env,
                                        std::string& why) {
  std::unique_ptr<receiver> r;
  if (asked == receive_path::gro)
    r = make_gro_receiver(env, why);
  else if (asked == receive_path::io_uring)
    r = make_uring_receiver(env, why);
  return r ? std::move(r) : make_mmsg_receiver(env);
}

// -- what is left at close -------------------------------------------------------------

int64_t drain_and_count(int fd, int64_t max) noexcept {
  // Read into one small scratch buffer with MSG_TRUNC, so msg_len is each
  // datagram's real length; with GRO a receive may hold several datagrams,
  // counted from the segment size. Real system calls: this only counts.
  constexpr size_t kBatch = 64;
  constexpr size_t kControl = CMSG_SPACE(sizeof(int));
  char scratch[16];
  mmsghdr msgs[kBatch];
  iovec iov{scratch, sizeof(scratch)};
  alignas(cmsghdr) char control[kBatch][kControl];
  int64_t count = 0;
  int errors = 0; // in a row: a dead fd must not keep us here
  while (count < max && errors < 8) {
    for (size_t i = 0; i < kBatch; ++i) {
      std::memset(&msgs[i], 0, sizeof(msgs[i]));
      msgs[i].msg_hdr.msg_iov = &iov;
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_control = control[i];
      msgs[i].msg_hdr.msg_controllen = kControl;
    }
    int n = ::recvmmsg(fd, msgs, kBatch, MSG_DONTWAIT | MSG_TRUNC, nullptr);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        break;
      ++errors; // EINTR, or an error report (ICMP): consumes no datagram
      continue;
    }
    errors = 0;
    if (n == 0)
      break;
    for (int i = 0; i < n; ++i) {
      size_t segment = gro_segment(msgs[i].msg_hdr);
      size_t len = msgs[i].msg_len;
      count += segment > 0 && len > segment
                 ? static_cast<int64_t>((len + segment - 1) / segment)
                 : 1;
    }
  }
  return count;
}

} // namespace mayfly::detail
