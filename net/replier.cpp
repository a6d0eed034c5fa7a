#include <mayfly/net/internal/replier.hpp>

#include <netinet/in.h>
#include <netinet/udp.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include <mayfly/net/internal/pktinfo.hpp>

namespace mayfly::detail {

namespace {

// GSO: at most this many segments and bytes per message (the kernel's
// UDP_MAX_SEGMENTS was 64 before 6.x; 65507 is the IPv4 payload limit).
constexpr uint32_t kGsoMaxSegments = 64;
constexpr size_t kGsoMaxBytes = 65507;
constexpr size_t kControlBytes
  = CMSG_SPACE(sizeof(uint16_t)) + kPktinfoSendSpace;

size_t round_up_pow2(size_t n) noexcept {
  size_t p = 1;
  while (p < n)
    p <<= 1;
  return p;
}

/// FNV-1a over `a`'s sockaddr bytes, continuing from `h`.
uint64_t hash_address(uint64_t h, const udp_address& a) noexcept {
  auto* p = reinterpret_cast<const unsigned char*>(a.sockaddr_ptr());
  for (socklen_t i = 0; i < a.size(); ++i)
    h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

/// A hash of (peer, size) for grouping, and of the source with
/// `with_source`.
size_t group_hash(const transmit& t, size_t size, bool with_source) noexcept {
  uint64_t h = hash_address(1469598103934665603ull ^ size, t.to);
  if (with_source)
    h = hash_address(h, t.from);
  return static_cast<size_t>(h ^ (h >> 29));
}

/// An error the kernel reports for an earlier datagram (ICMP), or for this
/// one when it comes again.
bool unreachable(int err) noexcept {
  return err == ECONNREFUSED || err == EHOSTUNREACH || err == ENETUNREACH
         || err == EHOSTDOWN || err == ENETDOWN;
}

} // namespace

replier::replier(replier_env env)
  : env_(std::move(env)),
    c_(*env_.counters),
    packer_(*env_.pools),
    gso_(env_.gso),
    pending_(env_.batch),
    group_of_(env_.batch),
    plan_(env_.batch),
    order_(env_.batch),
    cursor_(env_.batch),
    table_(round_up_pow2(2 * size_t{env_.batch})),
    msgs_(env_.batch),
    iovs_(env_.batch),
    controls_(kControlBytes * env_.batch) {
}

bool replier::add(const udp_address& to, slice payload,
                  const udp_address& from, uint32_t made) noexcept {
  if (!has_room())
    flush();
  if (!has_room())
    return false;
  auto& t = pending_[count_++];
  t.to = to;
  t.payload = std::move(payload);
  t.made = made;
  if (env_.set_source)
    t.from = from;
  return true;
}

bool replier::add_copy(const udp_address& to, std::string_view bytes,
                       const udp_address& from, uint32_t made) noexcept {
  if (!has_room())
    flush();
  if (!has_room())
    return false;
  auto packed = packer_.pack(bytes);
  if (!packed.has_owner())
    return false;
  return add(to, std::move(packed), from, made);
}

void replier::drop_pending() noexcept {
  c_.bump(shutdown_reply_drops, static_cast<int64_t>(count_));
  for (size_t i = 0; i < count_; ++i)
    pending_[i].payload.reset();
  count_ = 0;
  packer_.release();
}

// -- planning a batch ---------------------------------------------------------------

size_t replier::plan() noexcept {
  // One message per group of replies to one peer from one source of one
  // size (GSO), else one per reply. Groups go in the order their first reply was queued;
  // replies keep their order within a group.
  const bool gso = gso_.load(std::memory_order_relaxed);
  const size_t mask = table_.size() - 1;
  if (++generation_ == 0) { // wrapped: forget every slot
    for (auto& s : table_)
      s = {};
    generation_ = 1;
  }
  uint32_t groups = 0;
  for (size_t i = 0; i < count_; ++i) {
    auto& t = pending_[i];
    size_t size = t.payload.size();
    uint32_t g = groups;
    if (gso && size > 0 && size <= env_.gso_max_segment) {
      for (size_t h = group_hash(t, size, env_.set_source) & mask;;
           h = (h + 1) & mask) {
        auto& slot = table_[h];
        if (slot.generation != generation_) {
          slot = {generation_, g};
          break;
        }
        auto& m = plan_[slot.group];
        auto& rep = pending_[m.rep];
        if (m.segment == size && rep.to == t.to
            && (!env_.set_source || rep.from == t.from)) {
          if (m.count < kGsoMaxSegments && (m.count + 1) * size <= kGsoMaxBytes)
            g = slot.group;
          else
            slot.group = g; // full: a new group takes this key's place
          break;
        }
      }
    }
    if (g == groups) {
      plan_[groups++] = {0, 0, static_cast<uint32_t>(gso ? size : 0),
                         static_cast<uint32_t>(i)};
    }
    ++plan_[g].count;
    group_of_[i] = g;
  }
  uint32_t at = 0;
  for (uint32_t g = 0; g < groups; ++g) {
    plan_[g].first = at;
    cursor_[g] = at;
    at += plan_[g].count;
    if (plan_[g].count == 1)
      plan_[g].segment = 0; // a group of one is a plain datagram
  }
  for (size_t i = 0; i < count_; ++i)
    order_[cursor_[group_of_[i]]++] = static_cast<uint32_t>(i);
  return groups;
}

void replier::build(size_t messages) noexcept {
  for (size_t j = 0; j < messages; ++j) {
    auto& m = plan_[j];
    auto& first = pending_[order_[m.first]];
    auto& hdr = msgs_[j].msg_hdr;
    std::memset(&hdr, 0, sizeof(hdr));
    hdr.msg_name = const_cast<sockaddr*>(first.to.sockaddr_ptr());
    hdr.msg_namelen = first.to.size();
    hdr.msg_iov = &iovs_[m.first];
    hdr.msg_iovlen = m.count;
    for (uint32_t k = 0; k < m.count; ++k) {
      auto& p = pending_[order_[m.first + k]].payload;
      iovs_[m.first + k] = {const_cast<std::byte*>(p.data()), p.size()};
    }
    const bool source = env_.set_source && first.from.family() != AF_UNSPEC
                        && !first.from.is_unspecified();
    if (m.segment != 0 || source) {
      // The control area holds UDP_SEGMENT and/or the source address.
      auto* control = controls_.data() + j * kControlBytes;
      std::memset(control, 0, kControlBytes);
      hdr.msg_control = control;
      hdr.msg_controllen = kControlBytes;
      auto* c = CMSG_FIRSTHDR(&hdr);
      size_t used = 0;
      if (m.segment != 0) {
        c->cmsg_level = IPPROTO_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        auto size = static_cast<uint16_t>(m.segment);
        std::memcpy(CMSG_DATA(c), &size, sizeof(size));
        used = CMSG_SPACE(sizeof(uint16_t));
        c = reinterpret_cast<cmsghdr*>(control + used);
      }
      if (source)
        used += write_source(c, first.from);
      hdr.msg_controllen = used;
    }
    msgs_[j].msg_len = 0;
  }
}

void replier::retire(size_t messages, bool sent) noexcept {
  // The replies of the first `messages` messages leave the batch (their
  // slices are dropped: a send buffer whose last reply this was goes back
  // to its pool); the others close up, in their queued order. Sent ones
  // are counted by the class of the buffer they went from.
  size_t end = messages == 0 ? 0
                             : plan_[messages - 1].first
                                 + plan_[messages - 1].count;
  const size_t standard = env_.pools->standard().slot_size();
  int64_t n[3] = {};
  int64_t bytes[3] = {};
  for (size_t k = 0; k < end; ++k) {
    auto& payload = pending_[order_[k]].payload;
    if (sent) {
      int c = payload.has_owner() && !payload.pooled() ? 2 // dedicated
              : payload.pinned_bytes() <= standard     ? 0
                                                       : 1;
      ++n[c];
      bytes[c] += static_cast<int64_t>(payload.size());
    }
    payload.reset();
    group_of_[order_[k]] = UINT32_MAX; // retired
  }
  size_t kept = 0;
  for (size_t i = 0; i < count_; ++i) {
    if (group_of_[i] == UINT32_MAX)
      continue;
    if (kept != i)
      pending_[kept] = std::move(pending_[i]);
    ++kept;
  }
  for (size_t i = kept; i < count_; ++i)
    pending_[i].payload.reset();
  count_ = kept;
  if (sent) {
    c_.bump(datagrams_out_standard, n[0]);
    c_.bump(bytes_out_standard, bytes[0]);
    c_.bump(datagrams_out_jumbo, n[1]);
    c_.bump(bytes_out_jumbo, bytes[1]);
    c_.bump(datagrams_out_oversize, n[2]);
    c_.bump(bytes_out_oversize, bytes[2]);
  }
}

void replier::record_sent(size_t messages) noexcept {
  // One clock read per sendmmsg; only timed replies count.
  using namespace std::chrono;
  auto now = duration_cast<nanoseconds>(steady_clock::now().time_since_epoch())
               .count();
  size_t end = plan_[messages - 1].first + plan_[messages - 1].count;
  for (size_t k = 0; k < end; ++k) {
    auto made = pending_[order_[k]].made;
    if (made != 0)
      env_.timing->record_latency(handler_type::reply_to_kernel,
                                  since_stamp(now, made));
  }
}

void replier::drop_first(io_counter reason) noexcept {
  auto n = static_cast<int64_t>(plan_[0].count);
  c_.bump(reason, n);
  c_.bump(send_errors, n);
  retire(1, false);
}

void replier::disable_gso(int err) noexcept {
  c_.bump(gso_errors);
  if (!gso_.exchange(false, std::memory_order_relaxed))
    return;
  std::fprintf(stderr,
               "mayfly: %s: the kernel refused a UDP GSO send (%s): GSO is "
               "off for this socket from now on, replies go out one by one\n",
               env_.name.c_str(), std::strerror(err));
}

// -- sending ------------------------------------------------------------------------

bool replier::flush() noexcept {
  while (count_ > 0) {
    if (blocked_ || backoff_)
      return false;
    size_t m = plan();
    build(m);
    int rc = env_.calls->sendmmsg(env_.fd, msgs_.data(),
                                  static_cast<unsigned>(m));
    c_.bump(send_calls);
    if (rc > 0) {
      // The first rc messages went (a partial send: the rest go next
      // round, and an error on the first of them comes back then).
      retried_ = false;
      int64_t bytes = 0;
      int64_t datagrams = 0;
      for (int j = 0; j < rc; ++j) {
        bytes += msgs_[j].msg_len;
        datagrams += plan_[j].count;
        if (plan_[j].segment != 0) {
          c_.bump(gso_sends);
          c_.bump(gso_segments, plan_[j].count);
        }
      }
      c_.bump(datagrams_out, datagrams);
      c_.bump(bytes_out, bytes);
      if (env_.timing != nullptr)
        record_sent(static_cast<size_t>(rc));
      retire(static_cast<size_t>(rc), true);
      continue;
    }
    int err = rc < 0 ? -rc : EAGAIN;
    if (err == EINTR) {
      c_.bump(send_retries);
      continue;
    }
    if (err == EAGAIN || err == EWOULDBLOCK) {
      // The socket's send buffer is full: wait for POLLOUT, keep the batch.
      c_.bump(send_blocked);
      blocked_ = true;
      return false;
    }
    if (err == ENOBUFS) {
      // No kernel buffers (the device queue, not the socket): POLLOUT
      // would not tell when; look again shortly.
      c_.bump(send_blocked);
      backoff_ = true;
      return false;
    }
    if (plan_[0].segment != 0
        && (err == EIO || err == EINVAL || err == EMSGSIZE)) {
      // The kernel cannot segment here (no checksum offload: EIO; a
      // segment too large for the route, no_check set: EINVAL). Nothing
      // was sent: GSO off, the same replies one by one.
      disable_gso(err);
      continue;
    }
    if (unreachable(err) && !retried_) {
      // Most likely the report of an earlier datagram's ICMP error, which
      // this call consumed: this message was not sent; try it again.
      retried_ = true;
      c_.bump(send_retries);
      continue;
    }
    retried_ = false;
    drop_first(err == EMSGSIZE   ? send_dropped_too_large
               : unreachable(err) ? send_dropped_unreachable
                                  : send_dropped_other);
  }
  return true;
}

} // namespace mayfly::detail
