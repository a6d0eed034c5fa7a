#pragma once

// A closed-loop echo load generator (docs/workloads.md §1): keeps
// `window` requests outstanding on one connected UDP socket, checks every
// reply byte for byte, measures round-trip latency, and stops after
// `requests` replies or `seconds`, whichever comes first. Batches its own
// syscalls (sendmmsg/recvmmsg) so that it is not the bottleneck. Used by the
// echo example's --demo burst and by mayfly-load.

#include <cstdint>
#include <string>

#include <mayfly/actors/address.hpp>

namespace example {

struct echo_load_options {
  mayfly::udp_address server;
  uint32_t size = 64;        ///< bytes per request (>= 8: the request id)
  uint32_t window = 64;      ///< requests outstanding
  uint64_t requests = 100000;
  double seconds = 10;       ///< hard time bound
  uint32_t timeout_ms = 500; ///< a request unanswered this long is lost
  bool progress = false;     ///< print a line per second to stderr
};

struct echo_load_result {
  uint64_t sent = 0;
  uint64_t received = 0;
  uint64_t lost = 0;
  uint64_t mismatched = 0;
  double seconds = 0;
  double replies_per_s = 0;
  double p50_us = 0, p99_us = 0, p999_us = 0;

  std::string to_json() const;
  std::string to_text() const;
};

echo_load_result run_echo_load(const echo_load_options& opts);

} // namespace example
