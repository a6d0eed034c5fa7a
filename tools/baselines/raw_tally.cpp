// mayfly-raw-tally: the baseline for tally benchmarks. A minimal
// single-threaded recvmmsg loop that parses and sums inline (same parser as
// mayfly-tally, a std::unordered_map for totals), answering '?NAME' and '?*'
// like the real service so that mayfly-load can verify it the same way.
//
//   mayfly-raw-tally [--port P] [--batch B] [--exit-after S]

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "examples/tally/tally_protocol.hpp"

int main(int argc, char** argv) {
  int port = 9001;
  unsigned batch = 32;
  double exit_after = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--port")
      port = std::atoi(argv[i + 1]);
    else if (k == "--batch")
      batch = static_cast<unsigned>(std::atoi(argv[i + 1]));
    else if (k == "--exit-after")
      exit_after = std::atof(argv[i + 1]);
  }
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  int size = 32 << 20; // as mayfly-tally's default: same kernel buffering
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    std::perror("raw-tally: bind");
    return 1;
  }
  std::printf("raw-tally: listening on udp 127.0.0.1:%d\n", port);
  std::fflush(stdout);
  std::unordered_map<std::string, int64_t> totals;
  uint64_t sum = 0;
  long long errors = 0;
  std::vector<std::vector<char>> bufs(batch, std::vector<char>(65536));
  std::vector<iovec> iov(batch);
  std::vector<sockaddr_in6> names(batch);
  std::vector<mmsghdr> msgs(batch);
  std::string key;
  auto start = std::chrono::steady_clock::now();
  for (;;) {
    if (exit_after > 0
        && std::chrono::duration<double>(std::chrono::steady_clock::now()
                                         - start)
               .count()
             > exit_after)
      break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0)
      continue;
    for (unsigned i = 0; i < batch; ++i) {
      iov[i] = {bufs[i].data(), bufs[i].size()};
      std::memset(&msgs[i], 0, sizeof(mmsghdr));
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = &names[i];
      msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_in6);
    }
    int n = ::recvmmsg(fd, msgs.data(), batch, MSG_DONTWAIT, nullptr);
    for (int i = 0; i < n; ++i) {
      std::string_view d{bufs[i].data(), msgs[i].msg_len};
      std::string_view name;
      auto kind = tally::parse_query(d, name);
      if (kind == tally::query_kind::none) {
        tally::for_each_line(d, [&](std::string_view text) {
          tally::line l;
          if (!tally::parse_line(text, l)) {
            ++errors;
            return;
          }
          key.assign(l.name);
          totals[key] += l.value;
          sum += static_cast<uint64_t>(l.value);
        });
        continue;
      }
      char out[256];
      int len = 0;
      if (kind == tally::query_kind::summary) {
        len = std::snprintf(out, sizeof(out), "keys:%zu sum:%lld errors:%lld\n",
                            totals.size(), static_cast<long long>(sum), errors);
      } else if (kind == tally::query_kind::name) {
        key.assign(name);
        auto it = totals.find(key);
        len = std::snprintf(out, sizeof(out), "%s:%lld\n", key.c_str(),
                            static_cast<long long>(it == totals.end() ? 0 : it->second));
      } else {
        ++errors;
        continue;
      }
      ::sendto(fd, out, static_cast<size_t>(len), 0,
               reinterpret_cast<sockaddr*>(&names[i]), msgs[i].msg_hdr.msg_namelen);
    }
  }
  return 0;
}
