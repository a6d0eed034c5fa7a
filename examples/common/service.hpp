#pragma once

// What every example service shares: command-line flags, configuration
// (file, environment, flags), start-up messages, signal handling, a built-in
// traffic burst for demos, and the final statistics summary. Example code:
// it uses only mayfly's public API, as a real service would.
//
// Flags common to all examples:
//   --address A       bind address (default 127.0.0.1)
//   --port P          UDP port (default: the example's)
//   --stats A:P       serve statistics over HTTP on A:P (default: the
//                     configuration's stats.address, else off)
//   --workers N       CAF worker threads (default: one per core not taken
//                     by a receive thread, at least 1)
//   --receive-threads N
//   --config FILE     JSON configuration (see docs/guide.md)
//   --exit-after S    stop after S seconds (default: run until SIGINT/TERM)
//   --help
// Environment (a flag wins over the environment, which wins over the file):
//   MAYFLY_CONFIG, MAYFLY_WORKERS, MAYFLY_STATS

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <mayfly/actors/config.hpp>
#include <mayfly/actors/runtime.hpp>
#include <mayfly/net/stats_endpoint.hpp>
#include <mayfly/net/udp_endpoint.hpp>
#include <nlohmann/json.hpp>

namespace example {

/// An example-specific flag `--name VALUE`.
struct extra_flag {
  const char* name;
  const char* help;
  std::string* value;
};

struct service_options {
  std::string program;
  mayfly::runtime_config runtime;
  mayfly::endpoint_config endpoint;
  std::optional<mayfly::udp_address> stats;
  mayfly::stats_endpoint_limits stats_limits;
  uint32_t exit_after_s = 0;
  /// The configuration file's "service" section (the example's own
  /// settings; an empty object when absent).
  nlohmann::json service = nlohmann::json::object();
};

/// Parses flags, environment and the configuration file. Prints usage and
/// exits 0 on --help; prints the problem and exits 2 on an error.
/// `endpoint_defaults`: the example's own endpoint settings, under the
/// configuration file, the environment and the flags. `runtime_defaults`:
/// the same for the runtime (pool and arena sizes).
service_options parse_options(int argc, char** argv, const char* about,
                              uint16_t default_port,
                              std::vector<extra_flag> extra = {},
                              mayfly::endpoint_config endpoint_defaults = {},
                              mayfly::runtime_config runtime_defaults = {});

/// Builds the runtime, lets `setup` register the handler type (and any
/// long-lived actors), opens the UDP endpoint and the stats endpoint, prints
/// where they listen, calls `after_start` (e.g. a demo burst; may be empty)
/// on a thread of its own, and runs until a termination signal or
/// --exit-after. After the runtime stopped and before it is destroyed,
/// calls `after_stop` (drop every `caf::actor` handle you hold there: a
/// handle must not outlive the actor system). Prints a final summary.
/// Returns the process exit code.
int serve(service_options& opts,
          const std::function<mayfly::handler_type&(mayfly::runtime&)>& setup,
          const std::function<void(mayfly::runtime&, const mayfly::udp_address&)>&
            after_start = {},
          const std::function<void()>& after_stop = {});

} // namespace example
