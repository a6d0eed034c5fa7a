// mayfly-flood: an open-loop UDP sender for the overload and soak scripts
// (tools/reliability/). Unlike mayfly-load (closed loop: it never offers
// more than the server answers), it sends at a fixed rate whatever the
// server does, so that a rate above the server's capacity really overloads
// it. Loopback targets only; bounded in time.
//
//   mayfly-flood echo|tally|dns --target A:P --rate R --seconds S
//                [--size B] [--names K] [--lines L] [--name-bytes N]
//                [--gso G]
//
// - echo: requests of B bytes (default 64), an 8-byte counter first.
// - tally: ingest datagrams of L lines (default 40) "NAME:1|c" cycling
//   over K names (default 1000; every name occurs in each cycle), NAME
//   "flood.<n>" padded to N bytes when N is given (--lines 45
//   --name-bytes 26: ~1400-byte datagrams). Every value is 1, so the
//   expected sum is lines x datagrams that reached the server.
// - dns: queries cycling over www/mail/nope/info in example.test and one
//   name outside the zone (A, AAAA, TXT).
//
// R is datagrams per second (0: as fast as one thread can send). Datagrams
// leave in sendmmsg batches of up to 32, paced every millisecond. With
// --gso G (echo only, G <= 64) each message of a batch carries up to G
// datagrams of equal size as one UDP GSO send (UDP_SEGMENT): one thread
// then offers ~1.5 M datagrams/s instead of ~0.36 M (docs/facts.md), enough
// to overload a server several times over. The receiving socket sees
// ordinary datagrams: the kernel splits the GSO send on its way. Replies
// are read and counted, never checked (mayfly-load checks correctness).
// Prints one line of JSON: {"sent":..,"send_errors":..,"replies":..,
// "seconds":..,"rate":..} — `sent` counts datagrams the kernel accepted,
// which on loopback is what reached the server's socket or was dropped
// there (counted by the server as kernel_drops).

#include <arpa/inet.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <mayfly/actors/address.hpp>

namespace {

using clock_type = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "mayfly-flood: %s\n", what.c_str());
  std::exit(2);
}

// A DNS query for `name` (dotted, no trailing dot) of type `qtype`.
std::string dns_query(uint16_t id, const std::string& name, uint16_t qtype) {
  std::string q = {static_cast<char>(id >> 8), static_cast<char>(id & 0xFF),
                   1, 0, 0, 1, 0, 0, 0, 0, 0, 0};
  size_t start = 0;
  while (start < name.size()) {
    auto dot = name.find('.', start);
    if (dot == std::string::npos)
      dot = name.size();
    q += static_cast<char>(dot - start);
    q += name.substr(start, dot - start);
    start = dot + 1;
  }
  q += '\0';
  q += static_cast<char>(qtype >> 8);
  q += static_cast<char>(qtype & 0xFF);
  q += std::string("\0\1", 2);
  return q;
}

// The datagrams to cycle through.
std::vector<std::string> make_payloads(const std::string& mode, size_t size,
                                       unsigned names, unsigned lines,
                                       size_t name_bytes) {
  std::vector<std::string> out;
  if (mode == "echo") {
    for (int i = 0; i < 64; ++i)
      out.push_back(std::string(std::max<size_t>(size, 8), static_cast<char>('a' + i % 26)));
  } else if (mode == "tally") {
    unsigned n = 0;
    // Enough datagrams that every name occurs (at least 64).
    unsigned count = std::max(64u, (names + lines - 1) / lines);
    for (unsigned d = 0; d < count; ++d) {
      std::string s;
      for (unsigned l = 0; l < lines; ++l) {
        auto id = std::to_string(n++ % names);
        std::string name = "flood.";
        if (name_bytes > name.size() + id.size())
          name.append(name_bytes - name.size() - id.size(), 'x');
        s += name + id + ":1|c\n";
      }
      out.push_back(s);
    }
  } else if (mode == "dns") {
    const char* qnames[] = {"www.example.test", "mail.example.test",
                            "nope.example.test", "info.example.test",
                            "www.example.org"};
    const uint16_t types[] = {1, 28, 16};
    for (int i = 0; i < 64; ++i)
      out.push_back(dns_query(static_cast<uint16_t>(i), qnames[i % 5],
                              types[i % 3]));
  } else {
    die("mode must be echo, tally or dns");
  }
  return out;
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string{argv[1]} == "--help") {
    std::printf("usage: mayfly-flood echo|tally|dns --target A:P --rate R "
                "--seconds S [--size B] [--names K] [--lines L] "
                "[--name-bytes N]\n");
    return argc < 2 ? 2 : 0;
  }
  std::string mode = argv[1], target_text;
  double rate = 0, seconds = 10;
  size_t size = 64;
  unsigned names = 1000, lines = 40;
  size_t name_bytes = 0;
  unsigned gso = 1;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--target")
      target_text = v;
    else if (k == "--rate")
      rate = std::atof(v.c_str());
    else if (k == "--seconds")
      seconds = std::atof(v.c_str());
    else if (k == "--size")
      size = static_cast<size_t>(std::atol(v.c_str()));
    else if (k == "--lines")
      lines = static_cast<unsigned>(std::clamp(std::atol(v.c_str()), 1L, 4000L));
    else if (k == "--name-bytes")
      name_bytes = static_cast<size_t>(std::clamp(std::atol(v.c_str()), 0L, 128L));
    else if (k == "--gso")
      gso = static_cast<unsigned>(std::atol(v.c_str()));
    else if (k == "--names")
      names = static_cast<unsigned>(std::max(1L, std::atol(v.c_str())));
    else
      die("unknown flag " + k);
  }
  if (seconds <= 0 || seconds > 86400 || rate < 0 || size > 65507)
    die("bad --seconds, --rate or --size");
  if (gso < 1 || gso > 64 || (gso > 1 && mode != "echo")
      || (gso > 1 && std::max<size_t>(size, 8) * gso > 65000))
    die("bad --gso: 1 to 64 equal echo datagrams of at most 65000 bytes");
  auto to = mayfly::udp_address::parse(target_text);
  if (!to)
    die("--target: expected A:P");
  auto text = to->to_string();
  if (text.rfind("127.", 0) != 0 && text.rfind("[::1]", 0) != 0)
    die("--target must be a loopback address");
  int fd = ::socket(to->family(), SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  int buf = 8 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof(buf));
  if (fd < 0 || ::connect(fd, to->sockaddr_ptr(), to->size()) != 0)
    die("cannot connect a UDP socket");

  auto payloads = make_payloads(mode, size, names, lines, name_bytes);
  constexpr size_t kBatch = 32;
  std::vector<mmsghdr> msgs(kBatch);
  std::vector<iovec> iov(kBatch * gso);
  // One UDP_SEGMENT control message per GSO message: the segment size.
  constexpr size_t kCmsg = CMSG_SPACE(sizeof(uint16_t));
  std::vector<char> control(kBatch * kCmsg);
  std::vector<size_t> in_msg(kBatch, 0); // datagrams in message i
  uint64_t sent = 0, send_errors = 0, replies = 0, counter = 0;
  std::vector<char> rbuf(65536);
  auto drain = [&] {
    for (int i = 0; i < 1024; ++i) {
      auto n = ::recv(fd, rbuf.data(), rbuf.size(), MSG_DONTWAIT);
      if (n < 0)
        return;
      ++replies;
    }
  };
  auto start = clock_type::now();
  auto end = start + std::chrono::duration<double>(seconds);
  for (auto now = start; now < end; now = clock_type::now()) {
    double elapsed = std::chrono::duration<double>(now - start).count();
    uint64_t due = rate > 0 ? static_cast<uint64_t>(elapsed * rate) : sent + kBatch;
    if (due <= sent) {
      drain();
      std::this_thread::sleep_for(std::chrono::microseconds(500));
      continue;
    }
    // n messages of up to gso datagrams each, `want` datagrams in all.
    uint64_t want = std::min<uint64_t>(kBatch * gso, due - sent);
    size_t n = 0;
    for (uint64_t d = 0; d < want; ++n) {
      size_t g = std::min<uint64_t>(gso, want - d);
      for (size_t j = 0; j < g; ++j) {
        auto& p = payloads[(counter + d + j) % payloads.size()];
        if (mode == "echo") {
          uint64_t id = counter + d + j;
          std::memcpy(p.data(), &id, 8); // a request id, as clients do
        }
        iov[n * gso + j] = {p.data(), p.size()};
      }
      msgs[n] = {};
      msgs[n].msg_hdr.msg_iov = &iov[n * gso];
      msgs[n].msg_hdr.msg_iovlen = g;
      if (gso > 1) {
        auto* c = control.data() + n * kCmsg;
        std::memset(c, 0, kCmsg);
        msgs[n].msg_hdr.msg_control = c;
        msgs[n].msg_hdr.msg_controllen = kCmsg;
        auto* cm = CMSG_FIRSTHDR(&msgs[n].msg_hdr);
        cm->cmsg_level = SOL_UDP;
        cm->cmsg_type = UDP_SEGMENT;
        cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        uint16_t seg = static_cast<uint16_t>(std::max<size_t>(size, 8));
        std::memcpy(CMSG_DATA(cm), &seg, sizeof seg);
      }
      in_msg[n] = g;
      d += g;
    }
    int k = ::sendmmsg(fd, msgs.data(), static_cast<unsigned>(n), 0);
    if (k < 0) {
      ++send_errors; // failed calls: EAGAIN (buffer full), ECONNREFUSED
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    } else {
      uint64_t got = 0;
      for (int i = 0; i < k; ++i)
        got += in_msg[static_cast<size_t>(i)];
      sent += got;
      counter += got;
    }
    drain();
  }
  double took = std::chrono::duration<double>(clock_type::now() - start).count();
  // Late replies for a moment.
  for (int i = 0; i < 20; ++i) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10) <= 0)
      break;
    drain();
  }
  std::printf("{\"mode\":\"%s\",\"sent\":%llu,\"send_errors\":%llu,"
              "\"replies\":%llu,\"seconds\":%.3f,\"rate\":%.0f,"
              "\"target_rate\":%.0f}\n",
              mode.c_str(), static_cast<unsigned long long>(sent),
              static_cast<unsigned long long>(send_errors),
              static_cast<unsigned long long>(replies), took,
              static_cast<double>(sent) / took,
              rate);
  ::close(fd);
  return sent > 0 ? 0 : 1;
}
