#pragma once

// Helpers for the wire tests (tests/integration/wire/): an example program
// run as a subprocess on ephemeral loopback ports, its /stats (over
// tests/support/net_clients.hpp's HTTP GET), a connected UDP client, and
// waiting for the stats to settle.
// Test code: the heap is fine here. Every wait is bounded in time.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <mayfly/actors/address.hpp>
#include "tests/support/net_clients.hpp"
#include "tests/support/subprocess.hpp"

namespace wire {

using json = nlohmann::json;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

/// A small configuration for the examples: small pools, nothing prefaulted,
/// a jumbo class of `jumbo_slot` bytes (0: none). Written to a temp file.
inline std::string write_config(const std::string& tag, size_t jumbo_slot,
                                size_t jumbo_capacity = 8) {
  std::string path = ::testing::TempDir() + "mayfly-wire-" + tag + "-"
                     + std::to_string(::getpid()) + ".json";
  std::ofstream f{path};
  f << R"({ "runtime": { "workers": 2, "max_in_flight": 512,
               "shutdown_deadline_ms": 2000 },
  "memory": {
    "buffers": { "standard_slot_size": 2048, "standard_capacity": 1024,
                 "jumbo_slot_size": )"
    << jumbo_slot << R"(, "jumbo_capacity": )"
    << (jumbo_slot == 0 ? 0 : jumbo_capacity) << R"(,
                 "huge_pages": false, "prefault": false },
    "arenas": { "block_size": 16384, "capacity": 256 } },
  "net": { "receive_buffer": 1048576 } })";
  return path;
}

using mayfly::test::http_get;

/// The /stats document, or a discarded json when it could not be read.
inline json get_stats(const mayfly::udp_address& at) {
  auto body = http_get(at, "/stats");
  if (!body)
    return json(json::value_t::discarded);
  return json::parse(*body, nullptr, false);
}

/// Whether no handler, arena, slice or binary is outstanding: what must hold
/// on a running service once the traffic stopped. Until its IO loops have
/// been idle for 50 ms the standard pool may still hold what the endpoints
/// keep ready for themselves: a batch of 32 slots per receive thread for
/// `recvmmsg` and a partly filled send buffer per thread that replied with
/// copied bytes: each worker and each receive thread (docs/design/net.md,
/// "Idle"); after that, none. The bound is on `in_use`, which holds either
/// way; the jumbo pool must be at zero. `kept`: slices the service
/// keeps on purpose, each over a detached (dedicated) binary of its own,
/// such as the names mayfly-tally's aggregators store.
inline bool quiet(const json& s, int64_t kept = 0) {
  if (!s.is_object())
    return false;
  try {
    const auto& b = s.at("runtime").at("balance");
    if (b.at("handlers") != 0 || b.at("arenas_out") != 0
        || b.at("arena_blocks") != 0 || b.at("slices_live") != kept
        || s.at("runtime").at("in_flight") != 0)
      return false;
    int64_t reserve = s.at("runtime").at("workers").get<int64_t>();
    for (auto& [name, n] : s.at("net").items())
      if (name.rfind("udp:", 0) == 0)
        reserve += 33 * n.at("receive_threads").get<int64_t>();
    const auto& pools = s.at("pools");
    if (pools.at("standard").at("in_use").get<int64_t>() > reserve)
      return false;
    if (pools.contains("jumbo") && pools.at("jumbo").at("in_use") != 0)
      return false;
    return s.at("binaries").at("dedicated_live") == kept;
  } catch (const json::exception&) {
    return false; // a field missing: not the document we expect
  }
}

/// Polls /stats until `quiet`; the last document read (check it with
/// `quiet` again for a message). At most 10 s.
inline json wait_quiet(const mayfly::udp_address& at, int64_t kept = 0) {
  json s;
  for (int i = 0; i < 200; ++i) {
    s = get_stats(at);
    if (quiet(s, kept))
      return s;
    std::this_thread::sleep_for(50ms);
  }
  return s;
}

/// The one UDP endpoint section of a stats document.
inline json udp_section(const json& s) {
  if (!s.is_object() || !s.contains("net"))
    return json::object();
  for (auto& [name, n] : s.at("net").items())
    if (name.rfind("udp:", 0) == 0)
      return n;
  return json::object();
}

/// A connected UDP client that also drains stale replies.
class client : public mayfly::test::udp_client {
public:
  explicit client(const mayfly::udp_address& server, int timeout_ms = 2000)
    : udp_client(server, timeout_ms) {
  }

  /// Waits `ms` for a datagram; nothing if none came (the expected outcome
  /// for a datagram that must get no reply).
  std::optional<std::string> receive_within(int ms) {
    pollfd p{fd(), POLLIN, 0};
    if (::poll(&p, 1, ms) <= 0)
      return std::nullopt;
    return receive();
  }
};

/// An example program run as a subprocess: `--port 0 --stats 127.0.0.1:0`,
/// addresses read from what it prints on stdout (for at most 20 s).
class subprocess : public mayfly::test::subprocess {
public:
  subprocess(const std::string& program, const std::vector<std::string>& args)
    : mayfly::test::subprocess(program, args) {
    if (wait_for("statistics on http://")) {
      udp_ = find_address("listening on udp ", " ");
      stats_ = find_address("statistics on http://", "/");
    }
  }

  bool started() const {
    return udp_.has_value() && stats_.has_value();
  }

  const mayfly::udp_address& udp() const {
    return *udp_;
  }

  const mayfly::udp_address& stats() const {
    return *stats_;
  }

  /// SIGTERM, then waits up to 20 s for a graceful exit. The exit code, or
  /// -1 if it did not exit (it is killed then) or died of a signal.
  int terminate() {
    signal(SIGTERM);
    return wait(20s);
  }

private:
  std::optional<mayfly::udp_address> find_address(const std::string& before,
                                                   const std::string& end) {
    auto text = out();
    auto at = text.find(before);
    if (at == std::string::npos)
      return std::nullopt;
    at += before.size();
    auto stop = text.find(end, at);
    if (stop == std::string::npos)
      return std::nullopt;
    auto parsed = mayfly::udp_address::parse(text.substr(at, stop - at));
    if (!parsed)
      return std::nullopt;
    return *parsed;
  }

  std::optional<mayfly::udp_address> udp_;
  std::optional<mayfly::udp_address> stats_;
};

/// The end of a wire test's program: SIGTERM, then a graceful exit (0)
/// that logged a zero balance.
inline void expect_clean_stop(subprocess& proc) {
  EXPECT_EQ(proc.terminate(), 0) << proc.err();
  EXPECT_NE(proc.err().find("balance after stop: all zero"),
            std::string::npos)
    << proc.err();
}

/// Random bytes of length `n` from a fixed seed (repeatable).
inline std::string random_bytes(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (auto& c : s) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x & 0xFF);
  }
  return s;
}

} // namespace wire
