#include "examples/common/echo_load.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

#include <nlohmann/json.hpp>

namespace example {

namespace {

using clock_type = std::chrono::steady_clock;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           clock_type::now().time_since_epoch())
    .count();
}

// Request `id`: 8 bytes of id, then a pattern derived from the id, so every
// reply can be checked without keeping the request.
void fill(std::vector<char>& buf, uint64_t id, uint32_t size) {
  buf.resize(size);
  std::memcpy(buf.data(), &id, std::min<size_t>(8, size));
  for (uint32_t i = 8; i < size; ++i)
    buf[i] = static_cast<char>((id * 31 + i) & 0xff);
}

bool matches(const char* data, size_t n, uint64_t id, uint32_t size) {
  if (n != size)
    return false;
  for (uint32_t i = 8; i < size; ++i)
    if (data[i] != static_cast<char>((id * 31 + i) & 0xff))
      return false;
  return true;
}

double percentile(std::vector<uint32_t>& v, double q) {
  if (v.empty())
    return 0;
  auto k = static_cast<size_t>(q * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k] / 1000.0;
}

} // namespace

std::string echo_load_result::to_json() const {
  nlohmann::json j = {{"workload", "echo"},     {"sent", sent},
                      {"received", received},   {"lost", lost},
                      {"mismatched", mismatched}, {"seconds", seconds},
                      {"replies_per_s", replies_per_s},
                      {"p50_us", p50_us},       {"p99_us", p99_us},
                      {"p999_us", p999_us}};
  return j.dump();
}

std::string echo_load_result::to_text() const {
  char buf[256];
  std::snprintf(buf, sizeof(buf),
                "echo: %llu replies in %.2f s = %.0f/s; latency p50 %.1f us, "
                "p99 %.1f us, p99.9 %.1f us; lost %llu, mismatched %llu",
                static_cast<unsigned long long>(received), seconds,
                replies_per_s, p50_us, p99_us, p999_us,
                static_cast<unsigned long long>(lost),
                static_cast<unsigned long long>(mismatched));
  return buf;
}

echo_load_result run_echo_load(const echo_load_options& opts) {
  echo_load_result res;
  auto size = std::max<uint32_t>(opts.size, 8);
  auto window = std::max<uint32_t>(opts.window, 1);
  int fd = ::socket(opts.server.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int buf_size = 8 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf_size, sizeof(buf_size));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf_size, sizeof(buf_size));
  if (fd < 0 || ::connect(fd, opts.server.sockaddr_ptr(), opts.server.size()) != 0) {
    std::perror("echo load: socket/connect");
    if (fd >= 0)
      ::close(fd);
    return res;
  }
  // Outstanding requests by slot: send time, or 0 if free. A request id is
  // (sequence << 16 | slot), so a reply finds its slot whatever the order.
  window = std::min<uint32_t>(window, 65536);
  std::vector<int64_t> sent_at(window, 0);
  std::vector<uint64_t> slot_id(window, 0);
  std::vector<uint32_t> free_slots;
  for (uint32_t s = window; s > 0; --s)
    free_slots.push_back(s - 1);
  std::vector<uint32_t> latencies;
  latencies.reserve(std::min<uint64_t>(opts.requests, 10'000'000));
  constexpr size_t kBatch = 64;
  std::vector<std::vector<char>> out(kBatch);
  std::vector<iovec> out_iov(kBatch);
  std::vector<mmsghdr> out_msgs(kBatch);
  std::vector<std::vector<char>> in(kBatch, std::vector<char>(65536));
  std::vector<iovec> in_iov(kBatch);
  std::vector<mmsghdr> in_msgs(kBatch);
  uint64_t next_id = 0;
  auto start = now_ns();
  auto deadline = start + static_cast<int64_t>(opts.seconds * 1e9);
  auto timeout_ns = int64_t{opts.timeout_ms} * 1000000;
  auto last_progress = start;
  uint64_t outstanding = 0;
  for (;;) {
    auto now = now_ns();
    if (now >= deadline)
      break;
    // Expire requests unanswered for too long: lost.
    for (uint32_t s = 0; s < window; ++s)
      if (sent_at[s] != 0 && now - sent_at[s] > timeout_ns) {
        sent_at[s] = 0;
        free_slots.push_back(s);
        ++res.lost;
        --outstanding;
      }
    // Fill the window (in batches).
    size_t n = 0;
    while (!free_slots.empty() && res.sent + n < opts.requests && n < kBatch) {
      auto slot = free_slots.back();
      free_slots.pop_back();
      uint64_t id = (next_id++ << 16) | slot;
      fill(out[n], id, size);
      out_iov[n] = {out[n].data(), size};
      std::memset(&out_msgs[n], 0, sizeof(mmsghdr));
      out_msgs[n].msg_hdr.msg_iov = &out_iov[n];
      out_msgs[n].msg_hdr.msg_iovlen = 1;
      sent_at[slot] = now;
      slot_id[slot] = id;
      ++n;
    }
    if (n > 0) {
      int rc = ::sendmmsg(fd, out_msgs.data(), static_cast<unsigned>(n), 0);
      size_t ok = rc > 0 ? static_cast<size_t>(rc) : 0;
      for (size_t i = ok; i < n; ++i) { // not sent: free the slot again
        uint64_t id;
        std::memcpy(&id, out[i].data(), 8);
        sent_at[id & 0xffff] = 0;
        free_slots.push_back(static_cast<uint32_t>(id & 0xffff));
      }
      res.sent += ok;
      outstanding += ok;
    }
    if (outstanding == 0 && res.sent >= opts.requests)
      break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0)
      continue;
    for (size_t i = 0; i < kBatch; ++i) {
      in_iov[i] = {in[i].data(), in[i].size()};
      std::memset(&in_msgs[i], 0, sizeof(mmsghdr));
      in_msgs[i].msg_hdr.msg_iov = &in_iov[i];
      in_msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int got = ::recvmmsg(fd, in_msgs.data(), kBatch, MSG_DONTWAIT, nullptr);
    auto at = now_ns();
    for (int i = 0; i < got; ++i) {
      auto len = in_msgs[i].msg_len;
      uint64_t id = 0;
      if (len >= 8)
        std::memcpy(&id, in[i].data(), 8);
      auto slot = id & 0xffff;
      if (len < 8 || slot >= window || sent_at[slot] == 0
          || slot_id[slot] != id) {
        ++res.mismatched; // late (already counted lost) or garbage
        continue;
      }
      if (!matches(in[i].data(), len, id, size))
        ++res.mismatched;
      else
        ++res.received;
      latencies.push_back(static_cast<uint32_t>(
        std::min<int64_t>(at - sent_at[slot], UINT32_MAX)));
      sent_at[slot] = 0;
      free_slots.push_back(static_cast<uint32_t>(slot));
      --outstanding;
    }
    if (opts.progress && at - last_progress >= 1000000000) {
      std::fprintf(stderr, "echo: %llu replies, %.0f/s, lost %llu\n",
                   static_cast<unsigned long long>(res.received),
                   res.received / ((at - start) / 1e9),
                   static_cast<unsigned long long>(res.lost));
      last_progress = at;
    }
  }
  res.lost += outstanding;
  res.seconds = (now_ns() - start) / 1e9;
  res.replies_per_s = res.seconds > 0 ? res.received / res.seconds : 0;
  res.p50_us = percentile(latencies, 0.50);
  res.p99_us = percentile(latencies, 0.99);
  res.p999_us = percentile(latencies, 0.999);
  ::close(fd);
  return res;
}

} // namespace example
