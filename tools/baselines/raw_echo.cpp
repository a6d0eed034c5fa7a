// mayfly-raw-echo: the baseline for echo benchmarks. A minimal
// single-threaded echo loop with no actors: recvmmsg a batch into fixed
// buffers, sendmmsg the same buffers back to their senders. What mayfly's
// echo path (a handler actor per datagram) is compared against, in the same
// run, on the same machine (docs/benchmarks.md).
//
//   mayfly-raw-echo [--port P] [--batch B] [--exit-after S]

#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  int port = 9000;
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
  int size = 4 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    std::perror("raw-echo: bind");
    return 1;
  }
  std::printf("raw-echo: listening on udp 127.0.0.1:%d\n", port);
  std::fflush(stdout);
  std::vector<std::vector<char>> bufs(batch, std::vector<char>(65536));
  std::vector<iovec> iov(batch);
  std::vector<sockaddr_in6> names(batch);
  std::vector<mmsghdr> msgs(batch);
  auto start = std::chrono::steady_clock::now();
  unsigned long long echoed = 0;
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
    if (n <= 0)
      continue;
    for (int i = 0; i < n; ++i)
      iov[i].iov_len = msgs[i].msg_len; // send back exactly what came
    int off = 0;
    while (off < n) {
      int rc = ::sendmmsg(fd, msgs.data() + off, static_cast<unsigned>(n - off), 0);
      if (rc <= 0)
        break;
      off += rc;
    }
    echoed += static_cast<unsigned long long>(off);
  }
  std::fprintf(stderr, "raw-echo: echoed %llu datagrams\n", echoed);
  return 0;
}
