// mayfly-flood: an open-loop UDP sender for the overload and soak scripts
// (tools/reliability/). Unlike mayfly-load (closed loop: it never offers
// more than the server answers), it sends at a fixed rate whatever the
// server does, so that a rate above the server's capacity really overloads
// it. Loopback targets only; bounded in time.
//
//   mayfly-flood echo|tally|dns --target A:P --rate R --seconds S
//                [--size B] [--names K]
//
// - echo: requests of B bytes (default 64), an 8-byte counter first.
// - tally: ingest datagrams of 40 lines "flood.N:1|c" over K names
//   (default 1000), about 600 bytes.
// - dns: queries cycling over www/mail/nope/info in example.test and one
//   name outside the zone (A, AAAA, TXT).
//
// R is datagrams per second (0: as fast as one thread can send). Datagrams
// leave in sendmmsg batches of up to 32, paced every millisecond. Replies
// are read and counted, never checked (mayfly-load checks correctness).
// Prints one line of JSON: {"sent":..,"send_errors":..,"replies":..,
// "seconds":..,"rate":..} — `sent` counts datagrams the kernel accepted,
// which on loopback is what reached the server's socket or was dropped
// there (counted by the server as kernel_drops).

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

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
                                       unsigned names) {
  std::vector<std::string> out;
  if (mode == "echo") {
    for (int i = 0; i < 64; ++i)
      out.push_back(std::string(std::max<size_t>(size, 8), static_cast<char>('a' + i % 26)));
  } else if (mode == "tally") {
    unsigned n = 0;
    for (int d = 0; d < 64; ++d) {
      std::string s;
      for (int l = 0; l < 40; ++l)
        s += "flood." + std::to_string(n++ % names) + ":1|c\n";
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
                "--seconds S [--size B] [--names K]\n");
    return argc < 2 ? 2 : 0;
  }
  std::string mode = argv[1], target_text;
  double rate = 0, seconds = 10;
  size_t size = 64;
  unsigned names = 1000;
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
    else if (k == "--names")
      names = static_cast<unsigned>(std::max(1L, std::atol(v.c_str())));
    else
      die("unknown flag " + k);
  }
  if (seconds <= 0 || seconds > 86400 || rate < 0 || size > 65507)
    die("bad --seconds, --rate or --size");
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

  auto payloads = make_payloads(mode, size, names);
  constexpr size_t kBatch = 32;
  std::vector<mmsghdr> msgs(kBatch);
  std::vector<iovec> iov(kBatch);
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
    size_t n = std::min<uint64_t>(kBatch, due - sent);
    for (size_t i = 0; i < n; ++i) {
      auto& p = payloads[(counter + i) % payloads.size()];
      if (mode == "echo")
        std::memcpy(p.data(), &counter, 8); // a request id, as clients do
      iov[i] = {p.data(), p.size()};
      msgs[i] = {};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int k = ::sendmmsg(fd, msgs.data(), static_cast<unsigned>(n), 0);
    if (k < 0) {
      ++send_errors; // failed calls: EAGAIN (buffer full), ECONNREFUSED
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    } else {
      sent += static_cast<uint64_t>(k);
      counter += static_cast<uint64_t>(k);
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
