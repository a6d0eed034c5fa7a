#include <mayfly/net/serve.hpp>

#include <mayfly/net/stats_endpoint.hpp>
#include <mayfly/net/udp_endpoint.hpp>

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include <mayfly/runtime/parse.hpp>

namespace mayfly {

// -- checks --------------------------------------------------------------------

flag_check expect_uint(uint64_t min, uint64_t max) {
  return [min, max](std::string_view value) -> std::string {
    if (parse_uint(value, min, max))
      return {};
    return "a whole number in " + std::to_string(min) + ".."
           + std::to_string(max);
  };
}

flag_check expect_port() {
  return [](std::string_view value) -> std::string {
    if (parse_port(value))
      return {};
    return "a port number (0..65535)";
  };
}

flag_check expect_one_of(std::vector<std::string> choices) {
  return [choices = std::move(choices)](std::string_view value) {
    std::string expected;
    for (auto& c : choices) {
      if (value == c)
        return std::string{};
      expected += expected.empty() ? "'" + c + "'" : " or '" + c + "'";
    }
    return expected;
  };
}

// -- flags ---------------------------------------------------------------------

namespace {

// "FLAG: 'VALUE' is not EXPECTED": the error of a bad flag value.
error_info bad_value(const std::string& source, std::string_view value,
                     const std::string& expected) {
  return {errc::invalid_config, "", 0,
          source + ": '" + std::string{value} + "' is not " + expected};
}

// A flag's text and where it came from ("--workers" or "MAYFLY_WORKERS").
struct setting {
  std::string text;
  std::string source;
  bool given = false;

  void set(std::string value, std::string from) {
    text = std::move(value);
    source = std::move(from);
    given = true;
  }
};

const char* env(const char* name) {
  auto* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : nullptr;
}

// `s` as a number in [min, max], or an error naming it.
result<uint32_t> to_uint(const setting& s, uint32_t min, uint32_t max) {
  auto value = parse_uint(s.text, min, max);
  if (!value)
    return bad_value(s.source, s.text,
                     "a whole number in " + std::to_string(min) + ".."
                       + std::to_string(max));
  return static_cast<uint32_t>(*value);
}

} // namespace

std::string serve_usage(const std::string& program, const std::string& about,
                        uint16_t default_port,
                        const std::vector<serve_flag>& extra) {
  std::string out = about + "\n\nusage: " + program + " [flags]\n\n";
  char line[256];
  for (auto& f : extra) {
    std::snprintf(line, sizeof(line), "  --%-18s %s\n",
                  (f.name + " V").c_str(), f.help.c_str());
    out += line;
  }
  std::snprintf(
    line, sizeof(line), "  --port P             UDP port (default %u)\n",
    default_port);
  out += "  --address A          bind address (default 127.0.0.1)\n";
  out += line;
  out +=
    "  --stats A:P          serve statistics over HTTP on A:P, e.g. "
    "127.0.0.1:9100\n"
    "  --workers N          CAF worker threads (default: one per core not\n"
    "                       taken by a receive thread, 1 to 2)\n"
    "  --receive-threads N  IO threads, one socket each (default 1)\n"
    "  --source-rate N      datagrams/s admitted per source address (a /32\n"
    "                       or /64), per receive thread; 0: off (default)\n"
    "  --source-burst N     datagrams a quiet source may send at once\n"
    "                       (default: max(rate/10, 10))\n"
    "  --steer-cpu          with several receive threads, a datagram is read\n"
    "                       by the thread pinned to the CPU that took it\n"
    "  --reuse-port         SO_REUSEPORT: a successor process can bind the\n"
    "                       port and take over without a gap\n"
    "  --config FILE        JSON configuration (docs/guide.md)\n"
    "  --exit-after S       stop after S seconds (default: until SIGINT)\n"
    "  --help               this text\n\n"
    "environment: MAYFLY_CONFIG, MAYFLY_WORKERS, MAYFLY_STATS (flags win)\n"
    "signals: INT, TERM stop in order; HUP reloads; USR1, USR2 ignored\n";
  return out;
}

result<serve_options> read_serve_options(const std::vector<std::string>& args,
                                         uint16_t default_port,
                                         const std::vector<serve_flag>& extra,
                                         endpoint_config endpoint_defaults) {
  serve_options opts;
  opts.config.net = std::move(endpoint_defaults);
  auto& cfg = opts.config;
  setting address, port, stats, workers, receive_threads, config, exit_after,
    source_rate, source_burst;
  bool reuse_port = false;
  bool steer_cpu = false;
  if (auto* v = env("MAYFLY_CONFIG"))
    config.set(v, "MAYFLY_CONFIG");
  if (auto* v = env("MAYFLY_WORKERS"))
    workers.set(v, "MAYFLY_WORKERS");
  if (auto* v = env("MAYFLY_STATS"))
    stats.set(v, "MAYFLY_STATS");
  struct known {
    std::string name;
    setting* common;        // a common flag, or
    const serve_flag* own;  // a service's own
  };
  std::vector<known> flags = {{"address", &address, nullptr},
                              {"port", &port, nullptr},
                              {"stats", &stats, nullptr},
                              {"workers", &workers, nullptr},
                              {"receive-threads", &receive_threads, nullptr},
                              {"config", &config, nullptr},
                              {"exit-after", &exit_after, nullptr},
                              {"source-rate", &source_rate, nullptr},
                              {"source-burst", &source_burst, nullptr}};
  for (auto& f : extra)
    flags.push_back({f.name, nullptr, &f});
  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    if (arg == "--help" || arg == "-h") {
      opts.help = true;
      return opts;
    }
    std::string value;
    bool has_value = false;
    if (auto eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg.resize(eq);
      has_value = true;
    }
    // Switches: no value.
    if (arg == "--reuse-port" || arg == "--steer-cpu") {
      if (has_value)
        return error_info{errc::invalid_config, "takes no value", 0, arg};
      (arg == "--reuse-port" ? reuse_port : steer_cpu) = true;
      continue;
    }
    auto hit = std::find_if(flags.begin(), flags.end(), [&](const known& k) {
      return arg == "--" + k.name;
    });
    if (hit == flags.end())
      return error_info{errc::invalid_config, "unknown flag", 0,
                        "'" + arg + "'"};
    if (!has_value) {
      if (i + 1 >= args.size())
        return error_info{errc::invalid_config, "needs a value", 0, arg};
      value = args[++i];
    }
    if (hit->common != nullptr) {
      hit->common->set(value, arg);
    } else {
      if (hit->own->check)
        if (auto expected = hit->own->check(value); !expected.empty())
          return bad_value(arg, value, expected);
      *hit->own->value = value;
    }
  }
  // The configuration file first (on top of the service's defaults), then
  // the environment and flags on top.
  if (config.given) {
    if (config.text.empty())
      return bad_value(config.source, config.text, "a file name");
    auto file = load_config(config.text, cfg);
    if (!file)
      return file.error();
    cfg = std::move(file).value();
  }
  if (source_rate.given || source_burst.given) {
    auto limit = cfg.source_limit.value_or(source_limit_options{});
    if (source_rate.given) {
      auto n = to_uint(source_rate, 0, source_limit_options::max_rate);
      if (!n)
        return n.error();
      limit.rate = *n;
    }
    if (source_burst.given) {
      auto n = to_uint(source_burst, 0, source_limit_options::max_burst);
      if (!n)
        return n.error();
      limit.burst = *n;
    }
    cfg.source_limit = limit;
  }
  if (workers.given) {
    auto n = to_uint(workers, 1, 1024);
    if (!n)
      return n.error();
    cfg.runtime.workers = *n;
  }
  if (receive_threads.given) {
    auto n = to_uint(receive_threads, 1, 64);
    if (!n)
      return n.error();
    cfg.net.receive_threads = *n;
  }
  if (reuse_port)
    cfg.net.reuse_port = true;
  if (steer_cpu)
    cfg.net.steering = steering::cpu;
  if (cfg.runtime.workers == 0) {
    // Handlers start on the receive threads (net.handler_start); CAF's
    // workers run what they hand on. Small by default: one per core not
    // taken by a receive thread, at most `default_max_workers` (CAF
    // 0.17.6's scheduler cannot grow later; --workers raises it).
    auto cores = std::max(1u, std::thread::hardware_concurrency());
    auto free_cores = cores > cfg.net.receive_threads
                        ? cores - cfg.net.receive_threads
                        : 1;
    cfg.runtime.workers = std::min(free_cores, default_max_workers);
  }
  if (exit_after.given) {
    auto n = to_uint(exit_after, 0, 86400 * 365);
    if (!n)
      return n.error();
    opts.exit_after_s = *n;
  }
  uint16_t p = default_port;
  if (port.given) {
    auto parsed = parse_port(port.text);
    if (!parsed)
      return bad_value(port.source, port.text, "a port number (0..65535)");
    p = *parsed;
  }
  auto bind_text = address.given ? address.text : std::string{"127.0.0.1"};
  auto bind = udp_address::parse(bind_text, p);
  if (!bind)
    return bad_value(address.given ? address.source : "--address", bind_text,
                     "a numeric IPv4 or IPv6 address");
  cfg.net.address = *bind;
  if (stats.given) {
    auto at = udp_address::parse(stats.text);
    if (!at)
      return bad_value(stats.source, stats.text,
                       "ADDRESS:PORT (a numeric IPv4 or [IPv6] address, "
                       "a port 0..65535)");
    cfg.stats.address = *at;
  }
  return opts;
}

serve_options parse_serve_options(int argc, char** argv, const char* about,
                                  uint16_t default_port,
                                  std::vector<serve_flag> extra,
                                  endpoint_config endpoint_defaults) {
  // Before anything makes a thread, and so that a SIGHUP while the service
  // prepares (loads its data) does not end it: serve() takes it from here.
  block_serve_signals();
  std::string program = argc > 0 ? argv[0] : "mayfly-service";
  if (auto pos = program.rfind('/'); pos != std::string::npos)
    program.erase(0, pos + 1);
  std::vector<std::string> args(argv + std::min(argc, 1), argv + argc);
  auto opts = read_serve_options(args, default_port, extra,
                                 std::move(endpoint_defaults));
  if (!opts) {
    std::fprintf(stderr, "%s: %s (see --help)\n", program.c_str(),
                 opts.error().message().c_str());
    std::exit(2);
  }
  if (opts->help) {
    std::fputs(serve_usage(program, about, default_port, extra).c_str(),
               stdout);
    std::exit(0);
  }
  opts->program = program;
  return std::move(opts).value();
}

// -- serving -------------------------------------------------------------------

namespace {

sigset_t serve_signals() noexcept {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2})
    sigaddset(&set, sig);
  return set;
}

void print_summary(const std::string& program, runtime& rt) {
  auto doc = rt.collect_stats();
  std::fprintf(stderr, "%s: final statistics\n", program.c_str());
  for (auto& [name, h] : doc["handlers"].items()) {
    std::fprintf(stderr,
                 "  handler %-8s spawned %lld, finished %lld, failed %lld, "
                 "rejected %lld",
                 name.c_str(), h["spawned"].get<long long>(),
                 h["finished"].get<long long>(), h["failed"].get<long long>(),
                 h["rejected"].get<long long>());
    if (auto n = h.value("source_limited", 0LL); n != 0)
      std::fprintf(stderr, ", refused by the source limit %lld", n);
    std::fputc('\n', stderr);
  }
  for (auto& [name, n] : doc["net"].items()) {
    if (!n.contains("datagrams_in"))
      continue;
    std::fprintf(stderr,
                 "  %s: in %lld, out %lld, kernel drops %lld, policy drops "
                 "%lld, truncated %lld, send errors %lld\n"
                 "    batches: recv %.1f, send %.1f; syscalls/datagram %.2f; "
                 "wake-ups %lld\n",
                 name.c_str(), n["datagrams_in"].get<long long>(),
                 n["datagrams_out"].get<long long>(),
                 n["kernel_drops"].get<long long>(),
                 n["policy_drops"].get<long long>(),
                 n["truncated"].get<long long>(),
                 n["send_errors"].get<long long>(),
                 n["recv_batch_avg"].get<double>(),
                 n["send_batch_avg"].get<double>(),
                 n["syscalls_per_datagram"].get<double>(),
                 n["wakeups"].get<long long>());
    if (auto refused = n.value("source_limit_drops", 0LL); refused != 0)
      std::fprintf(stderr,
                   "    source limit: refused %lld, table evictions %lld\n",
                   refused, n.value("source_table_evictions", 0LL));
    // The stop: what was answered, dropped and never read.
    std::fprintf(stderr,
                 "    stop: answered %lld (%lld read after leaving the "
                 "port), dropped: shutdown %lld, replies at close %lld, "
                 "policy %lld; left in the kernel queue %lld\n",
                 n["datagrams_out"].get<long long>(),
                 n["drained_at_stop"].get<long long>(),
                 n["shutdown_drops"].get<long long>(),
                 n["shutdown_reply_drops"].get<long long>(),
                 n["policy_drops"].get<long long>(),
                 n["left_in_kernel_at_close"].get<long long>());
    if (n["threads"].size() > 1) {
      std::string spread;
      for (auto& [index, t] : n["threads"].items())
        spread += " " + index + ": "
                  + std::to_string(t["datagrams_in"].get<long long>());
      std::fprintf(stderr, "    datagrams in by thread:%s; steering %s\n",
                   spread.c_str(), n["steering"].get<std::string>().c_str());
    }
  }
  auto balance = rt.balance();
  std::fprintf(stderr, "  balance after stop: %s\n",
               balance.zero() ? "all zero"
                              : balance.to_json().dump().c_str());
}

// Waits for SIGHUP, SIGUSR1 and SIGUSR2 (blocked everywhere by
// block_serve_signals) until `done`; SIGINT and SIGTERM are runtime::run()'s.
void handle_signals(const serve_options& opts, const std::atomic<bool>& done) {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGHUP, SIGUSR1, SIGUSR2})
    sigaddset(&set, sig);
  auto* program = opts.program.c_str();
  while (!done.load(std::memory_order_acquire)) {
    timespec timeout{0, 100 * 1000 * 1000};
    int sig = sigtimedwait(&set, nullptr, &timeout);
    if (sig == SIGHUP && opts.reload) {
      std::fprintf(stderr, "%s: SIGHUP: reloading\n", program);
      opts.reload();
    } else if (sig == SIGHUP) {
      std::fprintf(stderr, "%s: SIGHUP: nothing to reload; still serving\n",
                   program);
    } else if (sig == SIGUSR1 || sig == SIGUSR2) {
      std::fprintf(stderr, "%s: %s ignored; still serving\n", program,
                   sig == SIGUSR1 ? "SIGUSR1" : "SIGUSR2");
    }
  }
}

} // namespace

void block_serve_signals() noexcept {
  auto set = serve_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int serve(serve_options& opts, const std::function<handler_type&(runtime&)>& setup,
          const std::function<void(runtime&, const udp_address&)>& after_start,
          const std::function<void()>& after_stop) {
  block_serve_signals();
  if (opts.program.empty())
    opts.program = "mayfly-service";
  auto* program = opts.program.c_str();
  const auto& cfg = opts.config;
  auto made = runtime::make(cfg.runtime);
  if (!made) {
    std::fprintf(stderr, "%s: invalid configuration: %s\n", program,
                 made.error().message().c_str());
    return 2;
  }
  auto& rt = **made;
  auto& handler = setup(rt);
  if (cfg.source_limit)
    handler.source_limit(*cfg.source_limit); // checked when parsed
  rt.start(); // before the socket exists, so that nothing it reads is refused
  auto endpoint = udp_endpoint::open(rt, handler, cfg.net);
  if (!endpoint) {
    std::fprintf(stderr, "%s: cannot listen on udp %s: %s\n", program,
                 cfg.net.address.to_string().c_str(),
                 endpoint.error().message().c_str());
    rt.stop();
    if (after_stop)
      after_stop();
    return 1;
  }
  auto local = endpoint->local_address();
  std::printf("%s: listening on udp %s (%u workers, %u receive threads)\n",
              program, local.to_string().c_str(), rt.config().workers,
              cfg.net.receive_threads);
  if (cfg.stats.address) {
    auto stats = stats_endpoint::open(rt, *cfg.stats.address, cfg.stats.limits);
    if (!stats) {
      std::fprintf(stderr, "%s: cannot serve statistics on %s: %s\n", program,
                   cfg.stats.address->to_string().c_str(),
                   stats.error().message().c_str());
      rt.stop();
      if (after_stop)
        after_stop();
      return 1;
    }
    auto at = stats->local_address().to_string();
    std::printf("%s: statistics on http://%s/ (JSON: curl http://%s/stats, "
                "Prometheus: /metrics)\n",
                program, at.c_str(), at.c_str());
  }
  std::fflush(stdout);
  std::atomic<bool> done{false};
  std::thread signals{[&] { handle_signals(opts, done); }};
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
  done.store(true, std::memory_order_release);
  signals.join();
  if (after_stop)
    after_stop();
  print_summary(opts.program, rt);
  return rt.balance().zero() ? 0 : 3;
}

} // namespace mayfly
