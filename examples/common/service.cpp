#include "examples/common/service.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <mayfly/net/stats_endpoint.hpp>

namespace example {

namespace {

[[noreturn]] void fail(const std::string& program, const std::string& what) {
  std::fprintf(stderr, "%s: %s (see --help)\n", program.c_str(), what.c_str());
  std::exit(2);
}

void usage(const char* program, const char* about, uint16_t port,
           const std::vector<extra_flag>& extra) {
  std::printf("%s\n\nusage: %s [flags]\n\n", about, program);
  for (auto& f : extra)
    std::printf("  --%-18s %s\n", (std::string{f.name} + " V").c_str(), f.help);
  std::printf(
    "  --address A          bind address (default 127.0.0.1)\n"
    "  --port P             UDP port (default %u)\n"
    "  --stats A:P          serve statistics over HTTP on A:P, e.g. "
    "127.0.0.1:9100\n"
    "  --workers N          CAF worker threads (default: one per core not\n"
    "                       taken by a receive thread, at least 1)\n"
    "  --receive-threads N  IO threads, one socket each (default 1)\n"
    "  --config FILE        JSON configuration (docs/guide.md)\n"
    "  --exit-after S       stop after S seconds (default: until SIGINT)\n"
    "  --help               this text\n\n"
    "environment: MAYFLY_CONFIG, MAYFLY_WORKERS, MAYFLY_STATS (flags win)\n",
    port);
}

uint32_t to_uint(const std::string& program, const char* flag,
                 const std::string& text, uint32_t max) {
  char* end = nullptr;
  errno = 0;
  auto value = std::strtoul(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || value > max)
    fail(program, std::string{"--"} + flag + ": expected a number up to "
                    + std::to_string(max) + ", got '" + text + "'");
  return static_cast<uint32_t>(value);
}

const char* env(const char* name) {
  auto* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : nullptr;
}

} // namespace

service_options parse_options(int argc, char** argv, const char* about,
                              uint16_t default_port,
                              std::vector<extra_flag> extra,
                              mayfly::endpoint_config endpoint_defaults) {
  service_options opts;
  opts.endpoint = endpoint_defaults;
  opts.program = argc > 0 ? argv[0] : "mayfly-example";
  if (auto pos = opts.program.rfind('/'); pos != std::string::npos)
    opts.program.erase(0, pos + 1);
  std::string address = "127.0.0.1", port = std::to_string(default_port);
  std::string stats, workers, receive_threads, config, exit_after;
  if (auto* v = env("MAYFLY_CONFIG"))
    config = v;
  if (auto* v = env("MAYFLY_WORKERS"))
    workers = v;
  if (auto* v = env("MAYFLY_STATS"))
    stats = v;
  struct known {
    const char* name;
    std::string* value;
  };
  std::vector<known> flags = {{"address", &address},
                              {"port", &port},
                              {"stats", &stats},
                              {"workers", &workers},
                              {"receive-threads", &receive_threads},
                              {"config", &config},
                              {"exit-after", &exit_after}};
  for (auto& f : extra)
    flags.push_back({f.name, f.value});
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      usage(opts.program.c_str(), about, default_port, extra);
      std::exit(0);
    }
    std::string value;
    bool has_value = false;
    if (auto eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg.resize(eq);
      has_value = true;
    }
    auto hit = std::find_if(flags.begin(), flags.end(), [&](const known& k) {
      return arg == std::string{"--"} + k.name;
    });
    if (hit == flags.end())
      fail(opts.program, "unknown flag '" + arg + "'");
    if (!has_value) {
      if (i + 1 >= argc)
        fail(opts.program, arg + " needs a value");
      value = argv[++i];
    }
    *hit->value = value;
  }
  // Configuration file first, then flags and environment on top.
  if (!config.empty()) {
    auto doc = mayfly::read_config_file(config);
    if (!doc)
      fail(opts.program, doc.error().message());
    auto rt = mayfly::parse_runtime_config(*doc);
    if (!rt)
      fail(opts.program, "invalid configuration: " + rt.error().message());
    opts.runtime = *rt;
    auto net = mayfly::parse_endpoint_config(*doc, endpoint_defaults);
    if (!net)
      fail(opts.program, "invalid configuration: " + net.error().message());
    opts.endpoint = *net;
    auto st = mayfly::parse_stats_config(*doc);
    if (!st)
      fail(opts.program, "invalid configuration: " + st.error().message());
    opts.stats = st->address;
    opts.stats_limits = st->limits;
  }
  if (!workers.empty())
    opts.runtime.workers = to_uint(opts.program, "workers", workers, 1024);
  if (!receive_threads.empty())
    opts.endpoint.receive_threads
      = to_uint(opts.program, "receive-threads", receive_threads, 64);
  if (opts.runtime.workers == 0) {
    // Handlers start on the receive threads (net.handler_start); CAF's
    // workers run what they hand on. One thread per core in all.
    auto cores = std::max(1u, std::thread::hardware_concurrency());
    opts.runtime.workers = cores > opts.endpoint.receive_threads
                             ? cores - opts.endpoint.receive_threads
                             : 1;
  }
  if (!exit_after.empty())
    opts.exit_after_s = to_uint(opts.program, "exit-after", exit_after,
                                 86400 * 365);
  auto p = to_uint(opts.program, "port", port, 65535);
  auto bind = mayfly::udp_address::parse(address, static_cast<int>(p));
  if (!bind)
    fail(opts.program, "--address: " + std::string{bind.error().what}
                         + " ('" + address + "')");
  opts.endpoint.address = *bind;
  if (!stats.empty()) {
    auto at = mayfly::udp_address::parse(stats);
    if (!at)
      fail(opts.program, "--stats: " + std::string{at.error().what}
                           + " (expected ADDRESS:PORT, got '" + stats + "')");
    opts.stats = *at;
  }
  return opts;
}

namespace {

void print_summary(const std::string& program, mayfly::runtime& rt) {
  auto doc = rt.collect_stats();
  std::fprintf(stderr, "%s: final statistics\n", program.c_str());
  for (auto& [name, h] : doc["handlers"].items())
    std::fprintf(stderr,
                 "  handler %-8s spawned %lld, finished %lld, failed %lld, "
                 "rejected %lld\n",
                 name.c_str(), h["spawned"].get<long long>(),
                 h["finished"].get<long long>(), h["failed"].get<long long>(),
                 h["rejected"].get<long long>());
  for (auto& [name, n] : doc["net"].items()) {
    if (!n.contains("datagrams_in"))
      continue;
    std::fprintf(stderr,
                 "  %s: in %lld, out %lld, kernel drops %lld, policy drops "
                 "%lld, truncated %lld, send errors %lld\n"
                 "    at shutdown: left in the kernel %lld, datagrams "
                 "dropped %lld, replies dropped %lld\n"
                 "    batches: recv %.1f, send %.1f; syscalls/datagram %.2f; "
                 "wake-ups %lld\n",
                 name.c_str(), n["datagrams_in"].get<long long>(),
                 n["datagrams_out"].get<long long>(),
                 n["kernel_drops"].get<long long>(),
                 n["policy_drops"].get<long long>(),
                 n["truncated"].get<long long>(),
                 n["send_errors"].get<long long>(),
                 n["left_in_kernel_at_close"].get<long long>(),
                 n["shutdown_drops"].get<long long>(),
                 n["shutdown_reply_drops"].get<long long>(),
                 n["recv_batch_avg"].get<double>(),
                 n["send_batch_avg"].get<double>(),
                 n["syscalls_per_datagram"].get<double>(),
                 n["wakeups"].get<long long>());
  }
  auto balance = rt.balance();
  std::fprintf(stderr, "  balance after stop: %s\n",
               balance.zero() ? "all zero"
                              : balance.to_json().dump().c_str());
}

} // namespace

int serve(service_options& opts,
          const std::function<mayfly::handler_type&(mayfly::runtime&)>& setup,
          const std::function<void(mayfly::runtime&,
                                   const mayfly::udp_address&)>& after_start,
          const std::function<void()>& after_stop) {
  mayfly::block_termination_signals();
  auto made = mayfly::runtime::make(opts.runtime);
  if (!made) {
    std::fprintf(stderr, "%s: invalid configuration: %s\n",
                 opts.program.c_str(), made.error().message().c_str());
    return 2;
  }
  auto& rt = **made;
  auto& handler = setup(rt);
  rt.start(); // before the socket exists, so that nothing it reads is refused
  auto endpoint = mayfly::udp_endpoint::open(rt, handler, opts.endpoint);
  if (!endpoint) {
    auto& err = endpoint.error();
    std::fprintf(stderr, "%s: cannot listen on %s: %s%s%s\n",
                 opts.program.c_str(), opts.endpoint.address.to_string().c_str(),
                 err.what, err.sys_errno ? ": " : "",
                 err.sys_errno ? std::strerror(err.sys_errno) : "");
    return 1;
  }
  auto local = (*endpoint)->local_address();
  std::printf("%s: listening on udp %s (%u workers, %u receive threads)\n",
              opts.program.c_str(), local.to_string().c_str(),
              rt.config().workers, opts.endpoint.receive_threads);
  if (opts.stats) {
    auto stats = mayfly::stats_endpoint::open(rt, *opts.stats,
                                              opts.stats_limits);
    if (!stats) {
      auto& err = stats.error();
      std::fprintf(stderr, "%s: cannot serve statistics on %s: %s%s%s\n",
                   opts.program.c_str(), opts.stats->to_string().c_str(),
                   err.what, err.sys_errno ? ": " : "",
                   err.sys_errno ? std::strerror(err.sys_errno) : "");
      return 1;
    }
    auto at = (*stats)->local_address().to_string();
    std::printf("%s: statistics on http://%s/ (JSON: curl http://%s/stats, "
                "Prometheus: /metrics)\n",
                opts.program.c_str(), at.c_str(), at.c_str());
  }
  std::fflush(stdout);
  std::thread helper;
  if (after_start || opts.exit_after_s > 0) {
    helper = std::thread{[&, local] {
      if (after_start)
        after_start(rt, local);
      if (opts.exit_after_s > 0) {
        // In steps, so that a signal (run() returning) ends the wait too.
        for (uint32_t i = 0; i < opts.exit_after_s * 10 && rt.running(); ++i)
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        rt.request_stop();
      }
    }};
  }
  rt.run();
  if (helper.joinable())
    helper.join();
  if (after_stop)
    after_stop();
  print_summary(opts.program, rt);
  return rt.balance().zero() ? 0 : 3;
}

} // namespace example
