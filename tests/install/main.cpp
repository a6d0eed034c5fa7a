// Links against the installed mayfly and uses its public API as a service
// would: a runtime, an echo handler, a UDP endpoint and the stats endpoint,
// all on loopback ports the kernel picks. Sends one datagram, expects it
// back, reads /stats over HTTP, stops, and checks every balance is zero.
// Exit status 0 only if all of that held.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include <mayfly/mayfly.hpp>

namespace {

int fail(const char* what) {
  std::fprintf(stderr, "install consumer: %s\n", what);
  return 1;
}

// Waits up to 5 s for `fd` to become readable.
bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 5000) == 1;
}

sockaddr_in loopback(uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return sa;
}

} // namespace

int main() {
  mayfly::runtime_config cfg;
  cfg.workers = 1;
  cfg.memory.buffers.standard_capacity = 256;
  cfg.memory.buffers.jumbo_capacity = 4;
  cfg.memory.arenas.capacity = 64;
  auto made = mayfly::runtime::make(cfg);
  if (!made)
    return fail(made.error().message().c_str());
  auto& rt = **made;
  auto& echo = rt.add_handler("echo", [](mayfly::handler_context& ctx,
                                         const mayfly::datagram& d) {
    ctx.reply(d.payload);
  });
  rt.start();

  mayfly::endpoint_config net;
  net.address = *mayfly::udp_address::parse("127.0.0.1:0");
  auto ep = mayfly::udp_endpoint::open(rt, echo, net);
  if (!ep)
    return fail(ep.error().message().c_str());
  auto stats = mayfly::stats_endpoint::open(
    rt, *mayfly::udp_address::parse("127.0.0.1:0"));
  if (!stats)
    return fail(stats.error().message().c_str());

  // One datagram to the echo endpoint and back.
  int u = socket(AF_INET, SOCK_DGRAM, 0);
  auto to = loopback((*ep)->local_address().port());
  const char msg[] = "installed";
  if (sendto(u, msg, sizeof msg - 1, 0, reinterpret_cast<sockaddr*>(&to),
             sizeof to)
      != static_cast<ssize_t>(sizeof msg - 1))
    return fail("sendto failed");
  char buf[64];
  if (!readable(u))
    return fail("no echo within 5 s");
  auto n = recv(u, buf, sizeof buf, 0);
  close(u);
  if (n != static_cast<ssize_t>(sizeof msg - 1)
      || std::memcmp(buf, msg, sizeof msg - 1) != 0)
    return fail("echo differs from the request");

  // GET /stats over HTTP/1.1.
  int t = socket(AF_INET, SOCK_STREAM, 0);
  auto http = loopback((*stats)->local_address().port());
  if (connect(t, reinterpret_cast<sockaddr*>(&http), sizeof http) != 0)
    return fail("connect to the stats endpoint failed");
  std::string req = "GET /stats HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    "Connection: close\r\n\r\n";
  if (send(t, req.data(), req.size(), 0) != static_cast<ssize_t>(req.size()))
    return fail("send to the stats endpoint failed");
  std::string reply;
  while (readable(t)) {
    char chunk[4096];
    auto k = recv(t, chunk, sizeof chunk, 0);
    if (k <= 0)
      break;
    reply.append(chunk, static_cast<size_t>(k));
  }
  close(t);
  if (reply.rfind("HTTP/1.1 200", 0) != 0
      || reply.find("\"handlers\"") == std::string::npos
      || reply.find("\"echo\"") == std::string::npos)
    return fail("/stats did not answer 200 with the echo handler");

  rt.stop();
  auto balance = rt.balance();
  if (!balance.zero())
    return fail("balances are not zero after stop");
  std::printf("install consumer: echo, /stats and balances ok\n");
  return 0;
}
