#pragma once

/// @file
/// `serve`: the `main` of a UDP service — command-line flags, the
/// configuration file, the statistics endpoint, signals and a final summary —
/// so that a service is its handler plus a few lines:
///
/// ```cpp
/// int main(int argc, char** argv) {
///   auto opts = mayfly::parse_serve_options(argc, argv, "echo: replies", 9000);
///   return mayfly::serve(opts, [](mayfly::runtime& rt) -> mayfly::handler_type& {
///     return rt.add_handler("echo", [](mayfly::handler_context& ctx,
///                                      const mayfly::datagram& d) {
///       ctx.reply(d.payload);
///     });
///   });
/// }
/// ```
///
/// **Flags** (`--name value` or `--name=value`), common to every service:
///
/// | flag | environment | meaning |
/// |---|---|---|
/// | `--address A` | | bind address (default 127.0.0.1) |
/// | `--port P` | | UDP port (default: the service's), 0..65535 |
/// | `--config FILE` | `MAYFLY_CONFIG` | JSON configuration (docs/guide.md) |
/// | `--stats A:P` | `MAYFLY_STATS` | serve statistics over HTTP on A:P |
/// | `--workers N` | `MAYFLY_WORKERS` | CAF worker threads, 1..1024 (default: one per free core, at most 2) |
/// | `--receive-threads N` | | IO threads, 1..64 |
/// | `--source-rate N` | | datagrams/s admitted per source address, 0..10000000 (0: off, the default) |
/// | `--source-burst N` | | datagrams a quiet source may send at once, 0..1000000000 (0: max(rate/10, 10)) |
/// | `--steer-cpu` | | CPU steering of the receive threads (`steering::cpu`) |
/// | `--reuse-port` | | SO_REUSEPORT, for a restart without a gap |
/// | `--exit-after S` | | stop after S seconds (default: at a signal) |
/// | `--help` | | usage, exit status 0 |
///
/// The file is read first; the environment, then the flags override it. A
/// service adds its own flags (`serve_flag`), optionally checked
/// (`expect_uint`, `expect_port`, `expect_one_of`, or its own check).
///
/// **Bad values.** Every number is parsed strictly (runtime/parse.hpp): an
/// unknown flag, a missing value, a number with a sign, suffix or exponent,
/// a port above 65535, an address that is not numeric, an unreadable
/// configuration file, an invalid field or a key given twice: the program
/// prints one line naming the flag and the value (`mayfly-echo: --port:
/// '99999' is not a port number (0..65535) (see --help)`) and exits with
/// status 2.
///
/// **Signals.** SIGINT and SIGTERM stop the service in order
/// (`runtime::stop()`: leave the port and answer what the kernel queued,
/// stop receiving, drain handlers, flush replies); the summary then says
/// what was answered, dropped (by reason) and left in the kernel queue.
/// SIGHUP calls `serve_options::reload` on serve's signal thread; without
/// one it logs that there is nothing to reload and keeps serving. SIGUSR1
/// and SIGUSR2 are logged and ignored. No signal ends the process
/// abruptly. `parse_serve_options` and `serve` block these signals in the
/// calling thread first thing, so call them before making any thread of
/// your own (or call `block_serve_signals()` first thing in `main`).
///
/// **Exit status** of `serve`: 0 after an orderly stop with every pooled
/// resource back (the summary says "balance after stop: all zero"); 1 when
/// the endpoint or the statistics endpoint cannot be opened (the message
/// has the address and the errno text); 2 for an invalid configuration; 3
/// when the balance is not zero after stop.
///
/// Thread-safety: call these from the main thread. Cost: cold path only.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <mayfly/actors/address.hpp>
#include <mayfly/actors/runtime.hpp>
#include <mayfly/net/config.hpp>
#include <mayfly/runtime/result.hpp>

namespace mayfly {

/// The most CAF workers `read_serve_options` starts when neither the file,
/// `MAYFLY_WORKERS` nor `--workers` says how many: one per core not taken by
/// a receive thread, at most this many (docs/guide.md, "Threads and memory
/// at rest").
constexpr uint32_t default_max_workers = 2;

/// Checks a flag's value: returns what was expected ("a port number
/// (0..65535)") when `value` is wrong, an empty string when it is fine.
using flag_check = std::function<std::string(std::string_view value)>;

/// A whole decimal number in `[min, max]` (runtime/parse.hpp).
flag_check expect_uint(uint64_t min, uint64_t max);

/// A port number, 0..65535.
flag_check expect_port();

/// One of `choices`, spelled exactly.
flag_check expect_one_of(std::vector<std::string> choices);

/// A service's own flag `--name VALUE`. `value` receives the text (checked
/// by `check` when set); it keeps its prior content when the flag is absent.
struct serve_flag {
  std::string name;
  std::string help;
  std::string* value;
  flag_check check = {};
};

/// What `parse_serve_options` read; adjust it in code before `serve`.
struct serve_options {
  /// argv[0] without its directory; prefixes every message.
  std::string program;
  /// The service's whole configuration (net/config.hpp), file, environment
  /// and flags applied: `config.runtime` makes the runtime, `config.net` is
  /// the UDP endpoint (its address included), `config.stats.address` where
  /// statistics are served (none: no stats endpoint) with
  /// `config.stats.limits`, and `config.source_limit`, when set, is given to
  /// the handler type `setup` returns (replacing the type's own; none: the
  /// type keeps what it was added with).
  mayfly::config config;
  /// Stop after this many seconds; 0: at SIGINT or SIGTERM.
  uint32_t exit_after_s = 0;
  /// Called on SIGHUP, on serve's signal thread while the service runs
  /// (handlers keep running meanwhile: swap state atomically). Empty: SIGHUP
  /// logs "nothing to reload".
  std::function<void()> reload;
  /// Set by `read_serve_options` when --help was given.
  bool help = false;
};

/// Reads flags (`args`, without the program name), the environment and the
/// configuration file on top of the defaults: `default_port` and
/// `endpoint_defaults` (the service's own endpoint settings, under the
/// file, the environment and the flags). The file is read with
/// `load_config` (net/config.hpp), so a file `serve` accepts is exactly a
/// file `load_config` accepts; the flags then override its fields. An error's `message()` names the
/// flag or field and the value. Does not print and does not exit.
result<serve_options>
read_serve_options(const std::vector<std::string>& args, uint16_t default_port,
                   const std::vector<serve_flag>& extra = {},
                   endpoint_config endpoint_defaults = {});

/// The usage text: `about`, then every flag with its help.
std::string serve_usage(const std::string& program, const std::string& about,
                        uint16_t default_port,
                        const std::vector<serve_flag>& extra = {});

/// `read_serve_options` for `main`: prints the usage and exits 0 on --help;
/// prints "PROGRAM: MESSAGE (see --help)" and exits 2 on an error. Calls
/// `block_serve_signals()` first, so call it first thing in `main`, before
/// any thread exists; a signal that arrives before `serve` runs waits for it
/// (SIGINT or SIGTERM then stops the service as soon as it started).
serve_options parse_serve_options(int argc, char** argv, const char* about,
                                  uint16_t default_port,
                                  std::vector<serve_flag> extra = {},
                                  endpoint_config endpoint_defaults = {});

/// Blocks SIGINT, SIGTERM, SIGHUP, SIGUSR1 and SIGUSR2 in the calling
/// thread and every thread it makes afterwards, so that none of them ends
/// the process; `serve` waits for them. Idempotent.
void block_serve_signals() noexcept;

/// Makes the runtime (`opts.config.runtime`), lets `setup` register the handler
/// type (and any long-lived actors), starts it, opens the UDP endpoint and
/// the stats endpoint, prints where they listen, calls `after_start` (e.g.
/// a demo burst; may be empty) on a thread of its own, and runs until
/// SIGINT, SIGTERM, --exit-after or `runtime::request_stop()`. After the
/// runtime stopped and before it is destroyed, calls `after_stop` (drop
/// every `caf::actor` handle you hold there: a handle must not outlive the
/// actor system). Prints a summary of the counters to stderr. Returns the
/// exit status (file comment).
int serve(serve_options& opts,
          const std::function<handler_type&(runtime&)>& setup,
          const std::function<void(runtime&, const udp_address&)>&
            after_start = {},
          const std::function<void()>& after_stop = {});

} // namespace mayfly
