// mayfly-load: load generator for the three protocols of
// docs/workloads.md. Loopback targets only; every run is bounded in count
// and time and stops by itself.
//
//   mayfly-load echo  [--target A:P] [--size B] [--window W] [--requests N]
//                     [--seconds S]
//   mayfly-load tally [--target A:P] [--datagrams N] [--rate R] [--names K]
//                     [--lines-per-datagram L] [--seconds S]
//   mayfly-load dns   [--target A:P] --queries FILE [--window W] [--rate R]
//                     [--requests N] [--seconds S]
//
// Echo is closed-loop (W outstanding, byte-for-byte verification, latency
// percentiles). Tally is open-loop at R datagrams/s (0: flat out), then
// waits for the server to drain and checks '?*' and one '?NAME' against the
// exact totals it sent; when they differ it says so (compare with the
// server's kernel_drops). DNS is closed-loop over the queries in FILE (one
// "NAME TYPE" per line), counting answers by rcode. Each prints a progress
// line per second, a human summary, and one line of JSON.

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "examples/common/echo_load.hpp"
#include <mayfly/actors/address.hpp>

namespace {

using clock_type = std::chrono::steady_clock;

double now_s() {
  return std::chrono::duration<double>(clock_type::now().time_since_epoch())
    .count();
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "mayfly-load: %s\n", what.c_str());
  std::exit(2);
}

struct args {
  std::map<std::string, std::string> kv;

  std::string get(const std::string& k, const std::string& def) const {
    auto i = kv.find(k);
    return i == kv.end() ? def : i->second;
  }

  double num(const std::string& k, double def) const {
    auto i = kv.find(k);
    if (i == kv.end())
      return def;
    char* end = nullptr;
    auto v = std::strtod(i->second.c_str(), &end);
    if (*end != '\0' || v < 0)
      die("--" + k + ": expected a non-negative number");
    return v;
  }
};

mayfly::udp_address target(const args& a, const char* def) {
  auto t = mayfly::udp_address::parse(a.get("target", def));
  if (!t)
    die(std::string{"--target: "} + t.error().what);
  // Loopback only: this tool must never load anybody else's network.
  auto text = t->to_string();
  bool loopback = text.rfind("127.", 0) == 0 || text.rfind("[::1]", 0) == 0;
  if (!loopback)
    die("--target must be a loopback address (127.0.0.0/8 or ::1)");
  return *t;
}

int connected_socket(const mayfly::udp_address& to) {
  int fd = ::socket(to.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int size = 8 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size));
  if (fd < 0 || ::connect(fd, to.sockaddr_ptr(), to.size()) != 0)
    die("cannot connect a UDP socket");
  return fd;
}

std::string ask(int fd, const std::string& q, int timeout_ms = 3000) {
  ::send(fd, q.data(), q.size(), 0);
  pollfd p{fd, POLLIN, 0};
  char buf[512];
  while (::poll(&p, 1, timeout_ms) > 0) {
    auto n = ::recv(fd, buf, sizeof(buf), 0);
    if (n > 0)
      return std::string{buf, static_cast<size_t>(n)};
  }
  return {};
}

// -- echo -------------------------------------------------------------------------

int run_echo(const args& a) {
  example::echo_load_options o;
  o.server = target(a, "127.0.0.1:9000");
  o.size = static_cast<uint32_t>(a.num("size", 64));
  o.window = static_cast<uint32_t>(a.num("window", 64));
  o.requests = static_cast<uint64_t>(a.num("requests", 1e6));
  o.seconds = a.num("seconds", 10);
  o.progress = true;
  auto r = example::run_echo_load(o);
  std::printf("%s\n%s\n", r.to_text().c_str(), r.to_json().c_str());
  return r.received > 0 && r.mismatched == 0 ? 0 : 1;
}

// -- tally ------------------------------------------------------------------------

int run_tally(const args& a) {
  auto to = target(a, "127.0.0.1:9001");
  auto datagrams = static_cast<uint64_t>(a.num("datagrams", 100000));
  auto rate = a.num("rate", 0);
  auto names = static_cast<uint32_t>(std::max(1.0, a.num("names", 1000)));
  auto per = static_cast<uint32_t>(std::max(1.0, a.num("lines-per-datagram", 40)));
  auto seconds = a.num("seconds", 30);
  int fd = connected_socket(to);
  auto base = ask(fd, "?*");
  if (base.empty())
    die("no answer to '?*' from " + to.to_string());
  long long keys0 = 0, sum0 = 0, errors0 = 0;
  std::sscanf(base.c_str(), "keys:%lld sum:%lld errors:%lld", &keys0, &sum0,
              &errors0);
  // Deterministic lines: name i%K gets value (i % 7) + 1.
  std::vector<int64_t> expected(names, 0);
  uint64_t line_no = 0, lines = 0, sent = 0;
  int64_t sent_sum = 0;
  constexpr size_t kBatch = 32;
  std::vector<std::string> bufs(kBatch);
  std::vector<iovec> iov(kBatch);
  std::vector<mmsghdr> msgs(kBatch);
  auto start = now_s(), last = start;
  while (sent < datagrams && now_s() - start < seconds) {
    size_t n = 0;
    for (; n < kBatch && sent + n < datagrams; ++n) {
      auto& b = bufs[n];
      b.clear();
      for (uint32_t l = 0; l < per; ++l) {
        auto id = line_no % names;
        int64_t v = static_cast<int64_t>(line_no % 7) + 1;
        auto line = "metric." + std::to_string(id) + ":" + std::to_string(v)
                    + "|c\n";
        if (b.size() + line.size() > 1472)
          break;
        b += line;
        expected[id] += v;
        sent_sum += v;
        ++line_no;
        ++lines;
      }
      iov[n] = {b.data(), b.size()};
      std::memset(&msgs[n], 0, sizeof(mmsghdr));
      msgs[n].msg_hdr.msg_iov = &iov[n];
      msgs[n].msg_hdr.msg_iovlen = 1;
    }
    int rc = ::sendmmsg(fd, msgs.data(), static_cast<unsigned>(n), 0);
    if (rc > 0)
      sent += static_cast<uint64_t>(rc);
    if (rate > 0) { // open loop: pace to the rate
      auto due = start + static_cast<double>(sent) / rate;
      auto wait = due - now_s();
      if (wait > 0)
        std::this_thread::sleep_for(std::chrono::duration<double>(wait));
    }
    if (now_s() - last >= 1) {
      last = now_s();
      std::fprintf(stderr, "tally: %llu datagrams, %.0f lines/s\n",
                   static_cast<unsigned long long>(sent),
                   lines / (last - start));
    }
  }
  auto elapsed = now_s() - start;
  // Let the server drain its socket, then ask: the answer is exact for all
  // it received (the server orders queries after earlier ingest).
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto after = ask(fd, "?*");
  long long keys1 = 0, sum1 = 0, errors1 = 0;
  std::sscanf(after.c_str(), "keys:%lld sum:%lld errors:%lld", &keys1, &sum1,
              &errors1);
  auto one = ask(fd, "?metric.0");
  auto got_sum = sum1 - sum0;
  bool exact = got_sum == sent_sum && errors1 == errors0;
  nlohmann::json j = {{"workload", "tally"},
                      {"datagrams", sent},
                      {"lines", lines},
                      {"seconds", elapsed},
                      {"lines_per_s", lines / elapsed},
                      {"datagrams_per_s", sent / elapsed},
                      {"sum_sent", sent_sum},
                      {"sum_counted", got_sum},
                      {"exact", exact},
                      {"reply_metric_0", one}};
  std::printf("tally: %llu datagrams, %llu lines in %.2f s = %.0f lines/s; "
              "totals %s (sent %lld, counted %lld)%s\n%s\n",
              static_cast<unsigned long long>(sent),
              static_cast<unsigned long long>(lines), elapsed, lines / elapsed,
              exact ? "exact" : "DIFFER", static_cast<long long>(sent_sum),
              got_sum,
              exact ? "" : " -- compare the server's kernel_drops",
              j.dump().c_str());
  ::close(fd);
  return exact ? 0 : 1;
}

// -- dns --------------------------------------------------------------------------

uint16_t qtype_of(const std::string& t) {
  static const std::map<std::string, uint16_t> types = {
    {"A", 1},   {"NS", 2},    {"CNAME", 5}, {"SOA", 6},
    {"MX", 15}, {"TXT", 16},  {"AAAA", 28}, {"ANY", 255}};
  auto i = types.find(t);
  return i == types.end() ? 1 : i->second;
}

// A standard query: header, one question (QNAME, QTYPE, QCLASS=IN).
std::string make_query(uint16_t id, const std::string& name, uint16_t qtype) {
  std::string q(12, '\0');
  q[0] = static_cast<char>(id >> 8);
  q[1] = static_cast<char>(id & 0xff);
  q[2] = 0x01; // RD
  q[5] = 1;    // QDCOUNT
  size_t start = 0;
  while (start < name.size()) {
    auto dot = name.find('.', start);
    if (dot == std::string::npos)
      dot = name.size();
    auto label = name.substr(start, dot - start);
    if (!label.empty()) {
      q += static_cast<char>(label.size());
      q += label;
    }
    start = dot + 1;
  }
  q += '\0';
  q += static_cast<char>(qtype >> 8);
  q += static_cast<char>(qtype & 0xff);
  q += '\0';
  q += '\1';
  return q;
}

int run_dns(const args& a) {
  auto to = target(a, "127.0.0.1:5353");
  auto file = a.get("queries", "");
  if (file.empty())
    die("dns: --queries FILE is required (lines of 'NAME TYPE')");
  std::ifstream in{file};
  if (!in)
    die("dns: cannot read " + file);
  std::vector<std::pair<std::string, uint16_t>> queries;
  std::string name, type;
  while (in >> name >> type)
    queries.emplace_back(name, qtype_of(type));
  if (queries.empty())
    die("dns: no queries in " + file);
  auto window = static_cast<uint32_t>(std::clamp(a.num("window", 64), 1.0, 60000.0));
  auto total = static_cast<uint64_t>(a.num("requests", 100000));
  auto seconds = a.num("seconds", 10);
  // --rate R: open loop, R queries/s (still at most W outstanding), for
  // latency at a fixed load; 0: closed loop, as fast as answers come.
  auto rate = a.num("rate", 0);
  int fd = connected_socket(to);
  std::vector<double> sent_at(65536, 0);
  std::vector<double> latencies; // seconds, one per answer
  latencies.reserve(1 << 20);
  uint64_t sent = 0, received = 0, lost = 0, outstanding = 0;
  std::map<int, uint64_t> rcodes;
  uint16_t next_id = 0;
  auto start = now_s(), last = start;
  char buf[4096];
  while (now_s() - start < seconds && (sent < total || outstanding > 0)) {
    while (outstanding < window && sent < total
           && (rate <= 0 || static_cast<double>(sent) < (now_s() - start) * rate)) {
      auto& [qname, qtype] = queries[sent % queries.size()];
      auto id = next_id++;
      auto q = make_query(id, qname, qtype);
      if (sent_at[id] != 0) { // wrapped onto an unanswered id
        ++lost;
        --outstanding;
      }
      if (::send(fd, q.data(), q.size(), 0) < 0)
        break;
      sent_at[id] = now_s();
      ++sent;
      ++outstanding;
    }
    pollfd p{fd, POLLIN, 0};
    int ready = ::poll(&p, 1, rate > 0 && outstanding == 0 ? 1 : 200);
    if (ready <= 0 && rate > 0 && outstanding == 0)
      continue; // idle between paced queries
    if (ready <= 0) {
      // Nothing for 200 ms: whatever is outstanding is lost.
      for (auto& t : sent_at)
        if (t != 0) {
          t = 0;
          ++lost;
        }
      outstanding = 0;
      continue;
    }
    while (true) {
      auto n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (n < 12)
        break;
      auto id = static_cast<uint16_t>((static_cast<uint8_t>(buf[0]) << 8)
                                      | static_cast<uint8_t>(buf[1]));
      if (sent_at[id] == 0)
        continue;
      if (latencies.size() < latencies.capacity())
        latencies.push_back(now_s() - sent_at[id]);
      sent_at[id] = 0;
      --outstanding;
      ++received;
      ++rcodes[buf[3] & 0x0f];
    }
    if (now_s() - last >= 1) {
      last = now_s();
      std::fprintf(stderr, "dns: %llu answers, %.0f/s\n",
                   static_cast<unsigned long long>(received),
                   received / (last - start));
    }
  }
  auto elapsed = now_s() - start;
  std::sort(latencies.begin(), latencies.end());
  auto pct = [&](double q) {
    return latencies.empty()
             ? 0.0
             : latencies[static_cast<size_t>(q * (latencies.size() - 1))] * 1e6;
  };
  nlohmann::json j = {{"workload", "dns"},    {"sent", sent},
                      {"received", received}, {"lost", lost + outstanding},
                      {"seconds", elapsed},   {"queries_per_s", received / elapsed},
                      {"p50_us", pct(0.5)},   {"p99_us", pct(0.99)}};
  for (auto& [code, n] : rcodes)
    j["rcodes"][std::to_string(code)] = n;
  std::printf("dns: %llu answers in %.2f s = %.0f/s, lost %llu\n%s\n",
              static_cast<unsigned long long>(received), elapsed,
              received / elapsed,
              static_cast<unsigned long long>(lost + outstanding),
              j.dump().c_str());
  ::close(fd);
  return received > 0 ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string{argv[1]} == "--help") {
    std::printf("usage: mayfly-load echo|tally|dns [--flag value ...]\n"
                "  echo : --target A:P --size B --window W --requests N "
                "--seconds S\n"
                "  tally: --target A:P --datagrams N --rate R --names K "
                "--lines-per-datagram L --seconds S\n"
                "  dns  : --target A:P --queries FILE --window W --requests N "
                "--seconds S [--rate R: open loop, R queries/s]\n"
                "targets must be loopback addresses\n");
    return argc < 2 ? 2 : 0;
  }
  args a;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k.rfind("--", 0) != 0)
      die("expected --flag value, got '" + k + "'");
    a.kv[k.substr(2)] = argv[i + 1];
  }
  if ((argc - 2) % 2 != 0)
    die("every flag needs a value");
  std::string mode = argv[1];
  if (mode == "echo")
    return run_echo(a);
  if (mode == "tally")
    return run_tally(a);
  if (mode == "dns")
    return run_dns(a);
  die("unknown workload '" + mode + "' (echo, tally, dns)");
}
