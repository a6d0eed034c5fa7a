// A small service for the stats page test (stats_page_test.sh): an echo
// endpoint and a stats endpoint on 127.0.0.1 (ports chosen by the kernel),
// and a loop sending it traffic, for a bounded time. The echo handler also
// forwards each datagram to a long-lived "keeper" that keeps the latest 32
// it got as they are (over max_slice_bytes: they pin their datagrams), so
// that the page's holder table has a holder to show, and the latest 32
// copies the detach policy made of the small ones.
//
//   stats_page_server [seconds]     (default 60, at most 600)
//
// Prints "stats http://127.0.0.1:PORT/" once serving, then runs until the
// time is up or SIGTERM/SIGINT arrives; exits 0 if the runtime's balances
// are zero after stop, 1 otherwise, 2 if it could not start.

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <caf/all.hpp>

#include <mayfly/actors/messages.hpp>
#include <mayfly/actors/runtime.hpp>
#include <mayfly/net/stats_endpoint.hpp>
#include <mayfly/net/udp_endpoint.hpp>

namespace {

using namespace mayfly;

// Sends bursts to `to` and reads the echoes until `done`; the burst size
// follows a slow wave so the page's charts have something to show.
void traffic(const udp_address& to, const std::atomic<bool>& done) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::connect(fd, to.sockaddr_ptr(), to.size()) != 0) {
    std::perror("traffic socket");
    if (fd >= 0)
      ::close(fd);
    return;
  }
  char payload[512] = {};
  char reply[2048];
  auto start = std::chrono::steady_clock::now();
  while (!done.load()) {
    double t = std::chrono::duration<double>(std::chrono::steady_clock::now()
                                             - start)
                 .count();
    int burst = 4 + static_cast<int>(12 * (1 + std::sin(t / 3)));
    size_t size = 64 + static_cast<size_t>(t * 50) % 448;
    for (int i = 0; i < burst; ++i)
      [[maybe_unused]] auto n = ::send(fd, payload, size, 0);
    for (int i = 0; i < burst; ++i) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0)
        break;
      [[maybe_unused]] auto n = ::recv(fd, reply, sizeof(reply), 0);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::close(fd);
}

// Keeps the latest `kKept` slices it is sent as they are (pool slots: the
// holder table shows them) and, apart, the latest `kKept` copies the detach
// policy made of small ones, so that the copies never push the pinned ones
// out. (The int works around CAF 0.17.6's argument-less function spawn.)
caf::behavior keeper(caf::event_based_actor*, int) {
  constexpr size_t kKept = 32;
  struct rings {
    std::vector<slice> pinned = std::vector<slice>(kKept);
    std::vector<slice> copies = std::vector<slice>(kKept);
    size_t next_pinned = 0;
    size_t next_copy = 0;
  };
  auto kept = std::make_shared<rings>();
  return {[kept](const slice& s) {
    if (s.pooled())
      kept->pinned[kept->next_pinned++ % kKept] = s;
    else
      kept->copies[kept->next_copy++ % kKept] = s;
  }};
}

} // namespace

int main(int argc, char** argv) {
  block_termination_signals();
  int seconds = argc > 1 ? std::atoi(argv[1]) : 60;
  if (seconds < 1 || seconds > 600)
    seconds = 60;

  runtime_config cfg;
  cfg.workers = 2;
  cfg.shutdown_deadline_ms = 2000;
  cfg.memory.buffers.standard_capacity = 512;
  cfg.memory.buffers.jumbo_capacity = 8;
  cfg.memory.buffers.prefault = false;
  cfg.memory.arenas.capacity = 512;
  cfg.memory.arenas.prefault = false;
  auto made = runtime::make(cfg);
  if (!made) {
    std::fprintf(stderr, "runtime: %s\n", made.error().message().c_str());
    return 2;
  }
  auto& rt = **made;
  // Echo, with a few temporaries in the arena (a copy of the payload and a
  // scratch area of varying size) so that the arena chart has data; odd
  // sizes are answered with the copy (packed into send buffers: the send
  // buffer chart), even ones zero-copy. Each payload also goes to a
  // long-lived keeper (the holder table). Once a second one activation
  // sleeps past the stall threshold (the stall chart and table).
  auto kept = rt.spawn(keeper, 0);
  rt.mark_long_lived(kept, "page keeper");
  auto last_stall = std::make_shared<std::atomic<int64_t>>(0);
  auto stall = std::chrono::milliseconds(cfg.stall_threshold_ms + 5);
  auto& echo = rt.add_handler("echo", [kept, last_stall, stall](
                                        handler_context& ctx,
                                        const datagram& d) {
    auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::steady_clock::now().time_since_epoch())
                 .count();
    auto last = last_stall->load();
    if (now - last >= 1000 && last_stall->compare_exchange_strong(last, now))
      std::this_thread::sleep_for(stall);
    auto copy = ctx.arena().copy(d.payload.view());
    [[maybe_unused]] auto* scratch
      = ctx.arena().try_allocate(64 + copy.size() * (copy.size() % 4));
    if (copy.size() % 2 == 1)
      ctx.reply(copy);
    else
      ctx.reply(d.payload);
    ctx.send(kept, d.payload); // 64..511 bytes: copied up to 128, else as is
  });
  endpoint_config ec;
  ec.address = *udp_address::parse("127.0.0.1:0");
  auto ep = udp_endpoint::open(rt, echo, ec);
  if (!ep) {
    std::fprintf(stderr, "udp: %s\n", ep.error().message().c_str());
    return 2;
  }
  auto stats = stats_endpoint::open(rt, *udp_address::parse("127.0.0.1:0"));
  if (!stats) {
    std::fprintf(stderr, "stats: %s\n", stats.error().message().c_str());
    return 2;
  }
  rt.start();
  std::printf("stats http://%s/\n",
              (*stats)->local_address().to_string().c_str());
  std::fflush(stdout);

  std::atomic<bool> done{false};
  std::thread load{[&] { traffic((*ep)->local_address(), done); }};
  std::thread timer{[&] {
    auto deadline = std::chrono::steady_clock::now()
                    + std::chrono::seconds(seconds);
    while (!done.load() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    rt.request_stop();
  }};
  rt.run(); // until the timer or a signal; then stops the runtime
  done.store(true);
  load.join();
  timer.join();
  auto b = rt.balance();
  std::printf("stopped: %s\n", b.to_json().dump().c_str());
  return b.zero() ? 0 : 1;
}
