// mayfly-net-bench: measurements of the network layer's paths on loopback
// (docs/benchmarks.md, issue 4). Every loop is bounded in count and time;
// only 127.0.0.1 is used.
//
//   mayfly-net-bench latency [--requests N] [--runs R]
//       W=1 echo, broken down with timestamps: client send -> recvmmsg
//       returned -> handler start -> reply queued -> client has the reply;
//       next to a raw recvmmsg/sendmmsg echo thread in the same run.
//   mayfly-net-bench receive [--datagrams N] [--size B] [--runs R]
//       receive only: a sender process (sendmmsg, or GSO with --gso-sender 1)
//       against a raw recvmmsg loop and against handlers (recvmmsg / gro
//       path): datagrams/s into handlers, syscalls and CPU per datagram.
//   mayfly-net-bench echo [--seconds S] [--window W] [--size B] [--runs R]
//       echo round trips/s through each path combination, client process
//       sending bursts of W (as one GSO message with --gso-client 1).
//
// Each figure is the median of R runs; variants alternate within a run so
// that their ratio is measured under the same noise.

#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <mayfly/actors/runtime.hpp>
#include <mayfly/net/udp_endpoint.hpp>

namespace {

using namespace mayfly;

int64_t now_ns() {
  using namespace std::chrono;
  return duration_cast<nanoseconds>(steady_clock::now().time_since_epoch())
    .count();
}

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec
         + 1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

double median(std::vector<double> v) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double pct(std::vector<double> v, double p) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

std::map<std::string, std::string> flags(int argc, char** argv, int from) {
  std::map<std::string, std::string> out;
  for (int i = from; i + 1 < argc; i += 2)
    out[std::string{argv[i]}.substr(2)] = argv[i + 1];
  return out;
}

long flag(const std::map<std::string, std::string>& f, const char* k,
          long def) {
  auto it = f.find(k);
  return it == f.end() ? def : std::atol(it->second.c_str());
}

sockaddr_in loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

int client_socket(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  int size = 4 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size));
  timeval tv{0, 200000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  auto a = loopback(port);
  ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  return fd;
}

void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof(set), &set);
}

/// Sends `count` datagrams of `seg` bytes from `buf` as one message, with
/// UDP_SEGMENT when count > 1.
ssize_t send_burst(int fd, const char* buf, size_t seg, size_t count) {
  iovec iov{const_cast<char*>(buf), seg * count};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(uint16_t))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (count > 1) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    auto* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = IPPROTO_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    auto s = static_cast<uint16_t>(seg);
    std::memcpy(CMSG_DATA(c), &s, sizeof(s));
  }
  return ::sendmsg(fd, &msg, 0);
}

/// Runs this binary with `args` in a child process; returns its stdout.
std::string run_child(const std::string& args) {
  std::string cmd = "/proc/" + std::to_string(getpid()) + "/exe " + args;
  std::string out;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[256];
    while (std::fgets(buf, sizeof(buf), p))
      out += buf;
    ::pclose(p);
  }
  return out;
}

std::unique_ptr<runtime> make_runtime() {
  runtime_config cfg;
  cfg.workers = 2;
  cfg.memory.buffers.standard_capacity = 8192;
  cfg.memory.buffers.jumbo_capacity = 128;
  auto rt = runtime::make(cfg);
  if (!rt) {
    std::fprintf(stderr, "runtime: %s\n", rt.error().message().c_str());
    std::exit(1);
  }
  return std::move(*rt);
}

// -- child processes -------------------------------------------------------------------

/// Sends `datagrams` datagrams of `size` bytes as fast as it can (sendmmsg
/// batches of 32, or GSO messages of 64), then prints how long it took.
int child_send(const std::map<std::string, std::string>& f) {
  pin(1);
  auto port = static_cast<uint16_t>(flag(f, "port", 0));
  auto total = flag(f, "datagrams", 1000000);
  auto size = static_cast<size_t>(flag(f, "size", 64));
  bool gso = flag(f, "gso-sender", 0) != 0;
  int fd = client_socket(port);
  std::vector<char> buf(size * 64, 'x');
  std::vector<mmsghdr> msgs(32);
  std::vector<iovec> iov(32);
  for (size_t i = 0; i < 32; ++i) {
    iov[i] = {buf.data(), size};
    msgs[i].msg_hdr = {};
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  auto start = now_ns();
  long sent = 0;
  while (sent < total && now_ns() - start < 20'000'000'000) {
    long n = std::min<long>(gso ? 64 : 32, total - sent);
    ssize_t rc = gso ? (send_burst(fd, buf.data(), size, n) > 0 ? n : -1)
                     : ::sendmmsg(fd, msgs.data(), n, 0);
    if (rc > 0)
      sent += rc;
  }
  std::printf("sent %ld %.6f\n", sent, (now_ns() - start) / 1e9);
  return 0;
}

/// Echo client: bursts of `window` datagrams (one GSO message with
/// --gso-client 1, else one send each), waits for the replies, repeats for
/// `seconds`. Prints round trips and losses.
int child_echo(const std::map<std::string, std::string>& f) {
  pin(1);
  auto port = static_cast<uint16_t>(flag(f, "port", 0));
  auto window = static_cast<size_t>(flag(f, "window", 16));
  auto size = static_cast<size_t>(flag(f, "size", 64));
  double seconds = static_cast<double>(flag(f, "seconds", 2));
  bool gso = flag(f, "gso-client", 0) != 0;
  int fd = client_socket(port);
  std::vector<char> buf(size * window, 'e');
  char rbuf[65536];
  long done = 0, lost = 0;
  auto start = now_ns();
  while (now_ns() - start < seconds * 1e9) {
    if (gso && window > 1) {
      send_burst(fd, buf.data(), size, window);
    } else {
      for (size_t i = 0; i < window; ++i)
        ::send(fd, buf.data(), size, 0);
    }
    for (size_t i = 0; i < window; ++i) {
      if (::recv(fd, rbuf, sizeof(rbuf), 0) < 0) {
        lost += static_cast<long>(window - i);
        break;
      }
      ++done;
    }
  }
  std::printf("echo %ld %ld %.6f\n", done, lost, (now_ns() - start) / 1e9);
  return 0;
}

// -- latency -----------------------------------------------------------------------------

// Written by the handler (a worker), read by the client thread.
struct stamp {
  std::atomic<int64_t> received{0}; // recvmmsg returned (received_ns)
  std::atomic<int64_t> started{0};  // handler began
  std::atomic<int64_t> queued{0};   // ctx.reply returned
};

int bench_latency(const std::map<std::string, std::string>& f) {
  auto requests = flag(f, "requests", 3000);
  auto runs = flag(f, "runs", 5);
  std::vector<stamp> stamps(static_cast<size_t>(requests));
  auto rt = make_runtime();
  auto& h = rt->add_handler("echo", [&](handler_context& ctx,
                                        const datagram& d) {
    auto t = now_ns();
    uint64_t seq = 0;
    if (d.payload.size() >= 16)
      std::memcpy(&seq, d.payload.data(), 8);
    ctx.reply(d.payload);
    if (seq < stamps.size()) {
      stamps[seq].received.store(d.received_ns);
      stamps[seq].started.store(t);
      stamps[seq].queued.store(now_ns());
    }
  });
  endpoint_config ec;
  ec.address = *udp_address::parse("127.0.0.1:0");
  auto ep = udp_endpoint::open(*rt, h, ec);
  if (!ep)
    return 1;
  rt->start();
  auto port = (*ep)->local_address().port();

  // The raw baseline: one thread, recvmmsg then sendmmsg, blocking.
  int raw = ::socket(AF_INET, SOCK_DGRAM, 0);
  auto ra = loopback(0);
  ::bind(raw, reinterpret_cast<sockaddr*>(&ra), sizeof(ra));
  socklen_t rl = sizeof(ra);
  ::getsockname(raw, reinterpret_cast<sockaddr*>(&ra), &rl);
  std::atomic<bool> raw_stop{false};
  std::thread raw_thread{[&] {
    char buf[2048];
    sockaddr_in peer{};
    iovec iov{buf, sizeof(buf)};
    mmsghdr m{};
    m.msg_hdr.msg_iov = &iov;
    m.msg_hdr.msg_iovlen = 1;
    while (!raw_stop) {
      pollfd p{raw, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0)
        continue;
      m.msg_hdr.msg_name = &peer;
      m.msg_hdr.msg_namelen = sizeof(peer);
      iov.iov_len = sizeof(buf);
      int n = ::recvmmsg(raw, &m, 1, MSG_DONTWAIT, nullptr);
      if (n == 1) {
        iov.iov_len = m.msg_len;
        ::sendmmsg(raw, &m, 1, 0);
      }
    }
  }};

  std::vector<double> rtt_m, rtt_r, c_in, c_disp, c_hand, c_out, p99_m, p99_r;
  for (long run = 0; run < runs; ++run) {
    for (int variant = 0; variant < 2; ++variant) {
      int fd = client_socket(variant == 0 ? port : ntohs(ra.sin_port));
      char buf[64] = {};
      std::vector<double> rtt, in, disp, hand, out;
      for (long i = 0; i < requests; ++i) {
        uint64_t seq = static_cast<uint64_t>(i);
        int64_t t0 = now_ns();
        std::memcpy(buf, &seq, 8);
        std::memcpy(buf + 8, &t0, 8);
        ::send(fd, buf, 64, 0);
        if (::recv(fd, buf, sizeof(buf), 0) < 0)
          continue;
        int64_t t1 = now_ns();
        rtt.push_back((t1 - t0) / 1e3);
        if (variant == 0) {
          auto& s = stamps[i];
          // The handler writes its stamps after its reply may already have
          // arrived: wait (bounded) for them.
          for (int k = 0; k < 1000 && s.queued.load() == 0; ++k)
            std::this_thread::yield();
          int64_t q = s.queued.load();
          if (q == 0)
            continue;
          int64_t rcv = s.received.load(), st = s.started.load();
          in.push_back((rcv - t0) / 1e3);
          disp.push_back((st - rcv) / 1e3);
          hand.push_back((q - st) / 1e3);
          out.push_back((t1 - q) / 1e3);
          s.queued.store(0);
        }
      }
      ::close(fd);
      if (variant == 0) {
        rtt_m.push_back(median(rtt));
        p99_m.push_back(pct(rtt, 0.99));
        c_in.push_back(median(in));
        c_disp.push_back(median(disp));
        c_hand.push_back(median(hand));
        c_out.push_back(median(out));
      } else {
        rtt_r.push_back(median(rtt));
        p99_r.push_back(pct(rtt, 0.99));
      }
    }
  }
  raw_stop = true;
  raw_thread.join();
  ::close(raw);
  std::printf("latency W=1, 64 B, %ld requests x %ld runs (medians of the "
              "per-run medians, us)\n",
              requests, runs);
  std::printf("  raw recvmmsg/sendmmsg echo : rtt p50 %.1f  p99 %.1f\n",
              median(rtt_r), median(p99_r));
  std::printf("  mayfly echo               : rtt p50 %.1f  p99 %.1f  "
              "(%.2fx raw)\n",
              median(rtt_m), median(p99_m), median(rtt_m) / median(rtt_r));
  std::printf("    client send -> recvmmsg returned : %.1f\n", median(c_in));
  std::printf("    recvmmsg -> handler starts      : %.1f\n", median(c_disp));
  std::printf("    handler start -> reply queued   : %.1f\n", median(c_hand));
  std::printf("    reply queued -> client has it   : %.1f\n", median(c_out));
  rt->stop();
  return 0;
}

// -- receive only ---------------------------------------------------------------------

struct recv_result {
  double rate = 0;        // datagrams/s received (first to last)
  double cpu_ns = 0;      // receiver CPU per datagram
  double syscalls = 0;    // receiver syscalls per datagram
  double per_call = 0;    // datagrams per receive call
  long got = 0;
  long sent = 0;
  long counted = 0; // the endpoint's kernel_drops (mayfly variants)
};

recv_result raw_receive(long total, size_t size, bool gso_sender) {
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  int big = 8 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
  auto a = loopback(0);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t al = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &al);
  constexpr unsigned batch = 32;
  std::vector<char> bufs(batch * 2048);
  std::vector<iovec> iov(batch);
  std::vector<mmsghdr> msgs(batch);
  for (unsigned i = 0; i < batch; ++i) {
    iov[i] = {bufs.data() + i * 2048, 2048};
    msgs[i].msg_hdr = {};
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  auto args = "child-send --port " + std::to_string(ntohs(a.sin_port))
              + " --datagrams " + std::to_string(total) + " --size "
              + std::to_string(size) + " --gso-sender "
              + (gso_sender ? "1" : "0");
  std::string out;
  std::thread sender{[&] { out = run_child(args); }};
  double cpu0 = cpu_seconds();
  long got = 0, calls = 0, polls = 0;
  int64_t first = 0, last = 0;
  int64_t deadline = now_ns() + 30'000'000'000;
  while (got < total && now_ns() < deadline) {
    int n = ::recvmmsg(fd, msgs.data(), batch, MSG_DONTWAIT, nullptr);
    if (n > 0) {
      ++calls;
      if (first == 0)
        first = now_ns();
      got += n;
      last = now_ns();
      continue;
    }
    pollfd p{fd, POLLIN, 0};
    ++polls;
    if (::poll(&p, 1, 300) == 0 && first != 0)
      break; // quiet for 300 ms: the rest was dropped
  }
  double cpu = cpu_seconds() - cpu0;
  sender.join();
  ::close(fd);
  recv_result r;
  r.got = got;
  std::sscanf(out.c_str(), "sent %ld", &r.sent);
  r.rate = last > first ? got / ((last - first) / 1e9) : 0;
  r.cpu_ns = got ? cpu * 1e9 / got : 0;
  r.syscalls = got ? static_cast<double>(calls + polls) / got : 0;
  r.per_call = calls ? static_cast<double>(got) / calls : 0;
  return r;
}

recv_result mayfly_receive(long total, size_t size, bool gso_sender,
                           receive_path path) {
  auto rt = make_runtime();
  std::atomic<long> got{0};
  std::atomic<int64_t> first{0}, last{0};
  auto& h = rt->add_handler("sink", [&](handler_context&, const datagram&) {
    auto t = now_ns();
    int64_t zero = 0;
    first.compare_exchange_strong(zero, t);
    last.store(t, std::memory_order_relaxed);
    got.fetch_add(1, std::memory_order_relaxed);
  });
  endpoint_config ec;
  ec.address = *udp_address::parse("127.0.0.1:0");
  ec.receive_buffer = 8u << 20;
  ec.receive_path = path;
  auto ep = udp_endpoint::open(*rt, h, ec);
  if (!ep)
    std::exit(1);
  rt->start();
  auto name = (*ep)->name();
  auto args = "child-send --port "
              + std::to_string((*ep)->local_address().port()) + " --datagrams "
              + std::to_string(total) + " --size " + std::to_string(size)
              + " --gso-sender " + (gso_sender ? "1" : "0");
  double cpu0 = cpu_seconds();
  auto out = run_child(args);
  // The sender is done: wait until handlers stop arriving (bounded).
  for (long seen = -1; seen != got.load();) {
    seen = got.load();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  double cpu = cpu_seconds() - cpu0;
  auto st = rt->collect_stats()["net"][name];
  rt->stop();
  recv_result r;
  r.got = got.load();
  std::sscanf(out.c_str(), "sent %ld", &r.sent);
  r.rate = last > first ? r.got / ((last - first) / 1e9) : 0;
  // CPU of the whole receiving process over the run: IO thread, workers,
  // and the 300 ms quiet wait (idle, ~no CPU).
  r.cpu_ns = r.got ? cpu * 1e9 / r.got : 0;
  double calls = st["recv_calls"].get<double>();
  r.syscalls = r.got ? (calls + st["polls"].get<double>()) / r.got : 0;
  r.per_call = calls > 0 ? st["datagrams_in"].get<double>() / calls : 0;
  r.counted = st["kernel_drops"].get<long>();
  return r;
}

int bench_receive(const std::map<std::string, std::string>& f) {
  auto total = flag(f, "datagrams", 300000);
  auto size = static_cast<size_t>(flag(f, "size", 64));
  auto runs = flag(f, "runs", 5);
  struct variant {
    const char* name;
    bool gso_sender;
    int kind; // 0 raw, 1 recvmmsg path, 2 gro path, 3 io_uring path
  };
  const variant variants[] = {
    {"raw recvmmsg loop, sendmmsg sender", false, 0},
    {"handlers, recvmmsg path, sendmmsg sender", false, 1},
    {"handlers, gro path, sendmmsg sender", false, 2},
    {"handlers, io_uring path, sendmmsg sender", false, 3},
    {"raw recvmmsg loop, GSO sender", true, 0},
    {"handlers, recvmmsg path, GSO sender", true, 1},
    {"handlers, gro path, GSO sender", true, 2},
    {"handlers, io_uring path, GSO sender", true, 3},
  };
  constexpr size_t nv = sizeof(variants) / sizeof(variants[0]);
  std::vector<recv_result> res[nv];
  for (long run = 0; run < runs; ++run)
    for (size_t v = 0; v < nv; ++v) {
      auto& x = variants[v];
      res[v].push_back(
        x.kind == 0 ? raw_receive(total, size, x.gso_sender)
                    : mayfly_receive(total, size, x.gso_sender,
                                     x.kind == 1   ? receive_path::recvmmsg
                                     : x.kind == 2 ? receive_path::gro
                                                   : receive_path::io_uring));
    }
  std::printf("receive only, %zu B, %ld datagrams sent per run, %ld runs "
              "(medians)\n",
              size, total, runs);
  std::printf("%-44s %10s %8s %10s %10s %9s\n", "variant", "rate/s",
              "vs raw", "cpu ns/dg", "sysc/dg", "dg/call");
  for (size_t v = 0; v < nv; ++v) {
    std::vector<double> rate, cpu, sc, pc, ratio, lost, counted;
    for (size_t i = 0; i < res[v].size(); ++i) {
      auto& r = res[v][i];
      rate.push_back(r.rate);
      cpu.push_back(r.cpu_ns);
      sc.push_back(r.syscalls);
      pc.push_back(r.per_call);
      auto& base = res[variants[v].gso_sender ? nv / 2 : 0][i];
      ratio.push_back(base.rate > 0 ? r.rate / base.rate : 0);
      lost.push_back(static_cast<double>(r.sent - r.got));
      counted.push_back(static_cast<double>(r.counted));
    }
    std::printf("%-44s %10.0f %7.2fx %10.0f %10.3f %9.1f  (lost %.0f, "
                "kernel_drops %.0f)\n",
                variants[v].name, median(rate), median(ratio), median(cpu),
                median(sc), median(pc), median(lost), median(counted));
  }
  return 0;
}

// -- echo -------------------------------------------------------------------------------

int bench_echo(const std::map<std::string, std::string>& f) {
  auto seconds = flag(f, "seconds", 2);
  auto window = flag(f, "window", 16);
  auto size = flag(f, "size", 64);
  auto runs = flag(f, "runs", 5);
  struct variant {
    const char* name;
    receive_path path;
    bool gso;
    bool gso_client;
  };
  const variant variants[] = {
    {"recvmmsg + sendmmsg (default)", receive_path::recvmmsg, false, false},
    {"gro + sendmmsg", receive_path::gro, false, false},
    {"recvmmsg + gso", receive_path::recvmmsg, true, false},
    {"io_uring + sendmmsg", receive_path::io_uring, false, false},
    {"recvmmsg + sendmmsg, GSO client", receive_path::recvmmsg, false, true},
    {"gro + sendmmsg, GSO client", receive_path::gro, false, true},
    {"gro + gso, GSO client", receive_path::gro, true, true},
    {"io_uring + gso, GSO client", receive_path::io_uring, true, true},
  };
  constexpr size_t nv = sizeof(variants) / sizeof(variants[0]);
  std::vector<double> rate[nv], ratio[nv], cpu[nv], gso_share[nv];
  for (long run = 0; run < runs; ++run) {
    double base_plain = 0, base_gso = 0;
    for (size_t v = 0; v < nv; ++v) {
      auto& x = variants[v];
      auto rt = make_runtime();
      auto& h = rt->add_handler("echo", [](handler_context& ctx,
                                           const datagram& d) {
        ctx.reply(d.payload);
      });
      endpoint_config ec;
      ec.address = *udp_address::parse("127.0.0.1:0");
      ec.receive_path = x.path;
      ec.gso = x.gso;
      auto ep = udp_endpoint::open(*rt, h, ec);
      if (!ep)
        return 1;
      rt->start();
      auto name = (*ep)->name();
      double cpu0 = cpu_seconds();
      auto out = run_child(
        "child-echo --port " + std::to_string((*ep)->local_address().port())
        + " --window " + std::to_string(window) + " --size "
        + std::to_string(size) + " --seconds " + std::to_string(seconds)
        + " --gso-client " + (x.gso_client ? "1" : "0"));
      double used = cpu_seconds() - cpu0;
      auto st = rt->collect_stats()["net"][name];
      rt->stop();
      long done = 0, lost = 0;
      double secs = 1;
      std::sscanf(out.c_str(), "echo %ld %ld %lf", &done, &lost, &secs);
      double r = done / secs;
      if (v == 0)
        base_plain = r;
      if (v == 4)
        base_gso = r;
      rate[v].push_back(r);
      ratio[v].push_back(r / (x.gso_client ? base_gso : base_plain));
      cpu[v].push_back(done ? used * 1e9 / done : 0);
      double outn = st["datagrams_out"].get<double>();
      gso_share[v].push_back(
        outn > 0 ? st["gso_segments"].get<double>() / outn : 0);
    }
  }
  std::printf("echo, %ld B, bursts of W=%ld, %ld s x %ld runs (medians; "
              "ratio to the default path with the same client)\n",
              size, window, seconds, runs);
  std::printf("%-36s %12s %8s %16s %10s\n", "server path", "round trips/s",
              "ratio", "server ns/echo", "via GSO");
  for (size_t v = 0; v < nv; ++v)
    std::printf("%-36s %12.0f %7.2fx %16.0f %9.0f%%\n", variants[v].name,
                median(rate[v]), median(ratio[v]), median(cpu[v]),
                100 * median(gso_share[v]));
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: mayfly-net-bench latency|receive|echo [--flag v]\n");
    return 2;
  }
  std::string mode = argv[1];
  auto f = flags(argc, argv, 2);
  if (mode == "child-send")
    return child_send(f);
  if (mode == "child-echo")
    return child_echo(f);
  if (mode == "latency")
    return bench_latency(f);
  if (mode == "receive")
    return bench_receive(f);
  if (mode == "echo")
    return bench_echo(f);
  std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
  return 2;
}
