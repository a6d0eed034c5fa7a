// The example programs with bad flag values, with signals, and restarted
// under load with a successor taking the port over (issue 18 items 5 and 6,
// issue 15 item 7, issue 16 part 4), as an operator would run them. Each bad value
// must end the program with exit status 2 and a message naming the value;
// SIGHUP, SIGUSR1 and SIGUSR2 must leave a running service serving.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <linux/sock_diag.h>
#include <regex>
#include <set>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <mayfly/actors/address.hpp>
#include "tests/support/subprocess.hpp"

namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

// A program run as a subprocess; stdout and stderr go to files.
using child = mayfly::test::subprocess;

struct bad_run {
  const char* program;
  std::vector<std::string> args;
  std::string named; // must appear in the message
  std::vector<std::string> env = {};
};

std::string zone() {
  return std::string{MAYFLY_SOURCE_DIR} + "/examples/dns/example.zone";
}

std::string write_file(const std::string& tag, const std::string& text) {
  auto path = ::testing::TempDir() + "mayfly-serve-" + tag + "-"
              + std::to_string(::getpid()) + ".json";
  std::ofstream{path} << text;
  return path;
}

void expect_exit_2_naming(const bad_run& run) {
  std::string all;
  for (auto& a : run.args)
    all += a + " ";
  child c{run.program, run.args, run.env};
  EXPECT_EQ(c.wait(30s), 2) << run.program << " " << all << "\n" << c.err();
  auto err = c.err();
  EXPECT_NE(err.find(run.named), std::string::npos)
    << run.program << " " << all << ": message does not name '" << run.named
    << "': " << err;
  EXPECT_EQ(err.find("terminate"), std::string::npos) << err;
}

TEST(ServeFlags, EchoRejectsEveryBadValueWithStatus2) {
  auto dup = write_file("dup", R"({ "runtime": { "workers": 2, "workers": 3 } })");
  const bad_run runs[] = {
    {MAYFLY_ECHO_BIN, {"--port", "99999"}, "'99999'"},
    {MAYFLY_ECHO_BIN, {"--port", "65536"}, "'65536'"},
    {MAYFLY_ECHO_BIN, {"--port", "abc"}, "'abc'"},
    {MAYFLY_ECHO_BIN, {"--workers", "12abc"}, "'12abc'"},
    {MAYFLY_ECHO_BIN, {"--workers", "1e3"}, "'1e3'"},
    {MAYFLY_ECHO_BIN, {"--receive-threads", "-1"}, "'-1'"},
    {MAYFLY_ECHO_BIN, {"--exit-after", "2s"}, "'2s'"},
    {MAYFLY_ECHO_BIN, {"--address", "localhost"}, "'localhost'"},
    {MAYFLY_ECHO_BIN, {"--stats", "127.0.0.1:99999"}, "'127.0.0.1:99999'"},
    {MAYFLY_ECHO_BIN, {"--demo", "abc"}, "'abc'"},
    {MAYFLY_ECHO_BIN, {"--config", "/tmp"}, "/tmp: cannot read"},
    {MAYFLY_ECHO_BIN, {"--config", "/proc/self/mem"}, "/proc/self/mem: "},
    {MAYFLY_ECHO_BIN, {"--config", "/nonexistent.json"}, "/nonexistent.json"},
    {MAYFLY_ECHO_BIN, {"--config", dup}, "runtime.workers: key given twice"},
    {MAYFLY_ECHO_BIN, {"--bogus"}, "'--bogus'"},
    {MAYFLY_ECHO_BIN, {"--source-rate", "abc"}, "--source-rate: 'abc'"},
    {MAYFLY_ECHO_BIN, {"--source-rate", "-1"}, "--source-rate: '-1'"},
    {MAYFLY_ECHO_BIN, {"--source-rate", "10000001"}, "'10000001'"},
    {MAYFLY_ECHO_BIN, {"--source-burst", "2.5"}, "--source-burst: '2.5'"},
    {MAYFLY_ECHO_BIN, {}, "MAYFLY_WORKERS: 'abc'", {"MAYFLY_WORKERS=abc"}},
  };
  for (auto& run : runs)
    expect_exit_2_naming(run);
  std::remove(dup.c_str());
}

TEST(ServeFlags, TallyRejectsEveryBadValueWithStatus2) {
  const bad_run runs[] = {
    {MAYFLY_TALLY_BIN, {"--aggregators", "abc"}, "'abc'"},
    {MAYFLY_TALLY_BIN, {"--aggregators", "-1"}, "'-1'"},
    {MAYFLY_TALLY_BIN, {"--aggregators", "12abc"}, "'12abc'"},
    {MAYFLY_TALLY_BIN, {"--aggregators", "1e3"}, "'1e3'"},
    {MAYFLY_TALLY_BIN, {"--aggregators", "127.0.0.1:99999"},
     "'127.0.0.1:99999'"},
    {MAYFLY_TALLY_BIN, {"--publish", "99999"}, "'99999'"},
    {MAYFLY_TALLY_BIN, {"--publish", "65536"}, "'65536'"},
    {MAYFLY_TALLY_BIN, {"--publish", "abc"}, "'abc'"},
    {MAYFLY_TALLY_BIN, {"--pin", "abc"}, "'abc'"},
    {MAYFLY_TALLY_BIN, {"--config", "/tmp"}, "/tmp: cannot read"},
  };
  for (auto& run : runs)
    expect_exit_2_naming(run);
}

TEST(ServeFlags, DnsRejectsEveryBadValueWithStatus2) {
  const bad_run runs[] = {
    {MAYFLY_DNS_BIN, {"--zone", zone(), "--port", "99999"}, "'99999'"},
    {MAYFLY_DNS_BIN, {"--zone", zone(), "--workers", "1e3"}, "'1e3'"},
    {MAYFLY_DNS_BIN, {"--zone", zone(), "--config", "/proc/self/mem"},
     "/proc/self/mem"},
  };
  for (auto& run : runs)
    expect_exit_2_naming(run);
}

// SIGHUP without a reload callback, SIGUSR1 and SIGUSR2 are logged and the
// service keeps answering; SIGTERM then stops it in order (status 0).
TEST(ServeSignals, HupAndUsrSignalsLeaveTheServiceServing) {
  child echo{MAYFLY_ECHO_BIN, {"--port", "0", "--workers", "1"}};
  ASSERT_TRUE(echo.wait_for("listening on udp ")) << echo.err();
  auto out = echo.out();
  auto at = out.find("listening on udp ") + 17;
  auto addr = mayfly::udp_address::parse(out.substr(at, out.find(' ', at) - at));
  ASSERT_TRUE(addr) << out;
  echo.signal(SIGHUP);
  ASSERT_TRUE(echo.wait_for("SIGHUP: nothing to reload; still serving", true))
    << echo.err();
  echo.signal(SIGUSR1);
  ASSERT_TRUE(echo.wait_for("SIGUSR1 ignored", true)) << echo.err();
  echo.signal(SIGUSR2);
  ASSERT_TRUE(echo.wait_for("SIGUSR2 ignored", true)) << echo.err();
  ASSERT_TRUE(echo.alive());
  // Still serving: one echo round trip.
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::connect(fd, addr->sockaddr_ptr(), addr->size()), 0);
  ASSERT_EQ(::send(fd, "ping", 4, 0), 4);
  pollfd p{fd, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 10000), 1);
  char reply[16];
  EXPECT_EQ(::recv(fd, reply, sizeof(reply), 0), 4);
  ::close(fd);
  echo.signal(SIGTERM);
  EXPECT_EQ(echo.wait(30s), 0) << echo.err();
  EXPECT_NE(echo.err().find("balance after stop: all zero"), std::string::npos)
    << echo.err();
}

// Asks `addr` for www.reload.test A; returns the answer's last four bytes
// (the address of a one-record answer) as dotted text, or "" without one.
std::string ask_www(const mayfly::udp_address& addr) {
  const char q[] = "\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
                   "\x03www\x06reload\x04test\x00\x00\x01\x00\x01";
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::connect(fd, addr.sockaddr_ptr(), addr.size()) != 0
      || ::send(fd, q, sizeof q - 1, 0) != static_cast<ssize_t>(sizeof q - 1)) {
    ::close(fd);
    return "";
  }
  pollfd p{fd, POLLIN, 0};
  unsigned char r[512];
  ssize_t n = ::poll(&p, 1, 10000) == 1 ? ::recv(fd, r, sizeof r, 0) : -1;
  ::close(fd);
  if (n < 16 || r[7] != 1) // ANCOUNT
    return "";
  return std::to_string(r[n - 4]) + "." + std::to_string(r[n - 3]) + "."
         + std::to_string(r[n - 2]) + "." + std::to_string(r[n - 1]);
}

TEST(ServeSignals, SighupReloadsTheDnsZoneAndABadZoneKeepsTheOld) {
  auto zone_text = [](int serial, const char* a) {
    return "$ORIGIN reload.test.\n$TTL 60\n@ SOA ns h " + std::to_string(serial)
           + " 2 3 4 5\n@ NS ns\nns A 192.0.2.53\nwww A " + a + "\n";
  };
  auto path = write_file("reload-zone", zone_text(1, "192.0.2.1"));
  child dns{MAYFLY_DNS_BIN, {"--zone", path, "--port", "0", "--workers", "1"}};
  ASSERT_TRUE(dns.wait_for("listening on udp ")) << dns.err();
  auto out = dns.out();
  auto at = out.find("listening on udp ") + 17;
  auto addr = mayfly::udp_address::parse(out.substr(at, out.find(' ', at) - at));
  ASSERT_TRUE(addr) << out;
  EXPECT_EQ(ask_www(*addr), "192.0.2.1");
  // A new zone: served after SIGHUP.
  write_file("reload-zone", zone_text(2, "192.0.2.2"));
  dns.signal(SIGHUP);
  ASSERT_TRUE(dns.wait_for("reloaded from", true)) << dns.err();
  EXPECT_EQ(ask_www(*addr), "192.0.2.2");
  // A broken zone: refused, the previous one still served.
  write_file("reload-zone", "$ORIGIN reload.test.\nwww A 192.0.2.300\n");
  dns.signal(SIGHUP);
  ASSERT_TRUE(dns.wait_for("zone reload failed: ", true)) << dns.err();
  EXPECT_EQ(ask_www(*addr), "192.0.2.2");
  dns.signal(SIGTERM);
  EXPECT_EQ(dns.wait(30s), 0) << dns.err();
  ::unlink(path.c_str());
}

// -- hand-over under load (issue 16 part 4) ------------------------------------

// The number `pattern`'s group matches first in a summary, or -1.
long long summary_number(const std::string& err, const std::string& pattern) {
  std::smatch m;
  std::regex re{pattern};
  if (!std::regex_search(err, m, re))
    return -1;
  return std::stoll(m[1]);
}

mayfly::udp_address listening_address(const std::string& out) {
  auto at = out.find("listening on udp ") + 17;
  auto addr = mayfly::udp_address::parse(out.substr(at, out.find(' ', at) - at));
  return addr ? *addr : mayfly::udp_address{};
}

// A client sends at a fixed, bounded rate (20k datagrams/s for 3 s) while
// process B starts on the same port with --reuse-port and process A gets
// SIGTERM. Every datagram the kernel accepted is answered by A or B, or
// counted as a kernel drop; A leaves nothing in its queue at close.
TEST(ServeHandover, ASuccessorTakesThePortWithoutLosingADatagram) {
  child a{MAYFLY_ECHO_BIN, {"--port", "0", "--reuse-port", "--workers", "1"}};
  ASSERT_TRUE(a.wait_for("listening on udp ")) << a.err();
  auto addr = listening_address(a.out());
  ASSERT_NE(addr.family(), AF_UNSPEC) << a.out();
  auto port = std::to_string(addr.port());

  // Several client sockets (source ports), so that the kernel's hash
  // spreads them over A's and B's sockets while both are on the port.
  constexpr size_t kClients = 8;
  std::vector<int> fds;
  for (size_t i = 0; i < kClients; ++i) {
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    int size = 4 << 20;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size));
    ASSERT_EQ(::connect(fd, addr.sockaddr_ptr(), addr.size()), 0);
    fds.push_back(fd);
  }
  constexpr uint32_t kRate = 20000;       // datagrams per second
  constexpr uint32_t kTotal = 3 * kRate;  // ~3 s
  std::atomic<uint32_t> sent{0};
  std::atomic<uint32_t> refused{0};
  std::atomic<bool> sending{true};
  std::set<uint32_t> answered;
  std::thread receiver{[&] {
    // Until 2 s after the last send.
    auto quiet_until = steady::now() + 3600s;
    std::vector<pollfd> polls;
    for (int fd : fds)
      polls.push_back({fd, POLLIN, 0});
    uint32_t seq = 0;
    while (steady::now() < quiet_until) {
      if (!sending.load() && quiet_until > steady::now() + 2s)
        quiet_until = steady::now() + 2s;
      if (::poll(polls.data(), polls.size(), 50) < 1)
        continue;
      for (int fd : fds)
        while (::recv(fd, &seq, sizeof(seq), MSG_DONTWAIT) == sizeof(seq))
          answered.insert(seq);
    }
  }};
  std::thread sender{[&] {
    auto start = steady::now();
    for (uint32_t i = 0; i < kTotal; ++i) {
      // In steps of 1 ms: 20 datagrams each.
      if (i % (kRate / 1000) == 0)
        std::this_thread::sleep_until(start + std::chrono::microseconds(
                                                uint64_t{i} * 1000000 / kRate));
      if (::send(fds[i % kClients], &i, sizeof(i), 0) == sizeof(i))
        sent.fetch_add(1);
      else
        refused.fetch_add(1); // ECONNREFUSED: a gap with no socket on the port
    }
    sending.store(false);
  }};
  // B starts while the client sends; once it listens, A is told to stop.
  std::this_thread::sleep_for(500ms);
  child b{MAYFLY_ECHO_BIN,
          {"--port", port, "--reuse-port", "--workers", "1"}};
  ASSERT_TRUE(b.wait_for("listening on udp ")) << b.err();
  a.signal(SIGTERM);
  EXPECT_EQ(a.wait(30s), 0) << a.err();
  sender.join();
  receiver.join();
  b.signal(SIGTERM);
  EXPECT_EQ(b.wait(30s), 0) << b.err();

  // Drops the kernel counted: at the servers' sockets (their summaries)
  // and at the client's socket (replies).
  long long client_drops = 0;
  for (int fd : fds) {
    uint32_t mem[SK_MEMINFO_VARS] = {};
    socklen_t len = sizeof(mem);
    ASSERT_EQ(::getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &len), 0);
    client_drops += mem[SK_MEMINFO_DROPS];
    ::close(fd);
  }
  auto a_err = a.err();
  auto b_err = b.err();
  long long a_drops = summary_number(a_err, "kernel drops (\\d+)");
  long long b_drops = summary_number(b_err, "kernel drops (\\d+)");
  long long a_in = summary_number(a_err, ": in (\\d+)");
  long long b_in = summary_number(b_err, ": in (\\d+)");
  long long a_left = summary_number(a_err, "left in the kernel queue (\\d+)");
  long long a_drained = summary_number(a_err, "\\((\\d+) read after leaving");
  ASSERT_GE(a_drops, 0) << a_err;
  ASSERT_GE(b_drops, 0) << b_err;
  ASSERT_GE(a_left, 0) << a_err;
  std::printf("hand-over: sent %u, refused %u, answered %zu; A read %lld "
              "(%lld after leaving the port), B read %lld; kernel drops A "
              "%lld, B %lld, client %lld; left in A's queue %lld\n",
              sent.load(), refused.load(), answered.size(), a_in, a_drained,
              b_in, a_drops, b_drops, client_drops, a_left);
  EXPECT_EQ(refused.load(), 0u);
  EXPECT_EQ(a_left, 0) << a_err;
  EXPECT_GT(b_in, 0) << b_err;
  EXPECT_EQ(static_cast<long long>(answered.size()) + a_drops + b_drops
              + client_drops,
            static_cast<long long>(sent.load()))
    << a_err << b_err;
}

} // namespace
