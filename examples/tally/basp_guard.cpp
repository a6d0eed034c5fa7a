#include "examples/tally/basp_guard.hpp"

#include "examples/tally/log_throttle.hpp"

#include <caf/io/basp/header.hpp>
#include <caf/io/basp/message_type.hpp>

#include <atomic>
#include <cstdio>

namespace {

std::atomic<uint64_t> checked{0};
tally::throttled_count rejected; // each logged: log_throttle.hpp

// The rules, from BASP's description of each operation: what must be zero
// and what must be set. Unlike CAF 0.17.6, both handshakes must carry the
// payload that `instance::handle` reads, and no payload may exceed
// kMaxBaspPayload.
bool acceptable(const caf::io::basp::header& h) {
  using caf::io::basp::message_type;
  if (h.payload_len > tally::kMaxBaspPayload)
    return false;
  auto has_payload = h.payload_len > 0;
  switch (h.operation) {
    case message_type::server_handshake: // version in operation_data
      return h.operation_data != 0 && has_payload;
    case message_type::client_handshake:
      return h.source_actor == 0 && h.dest_actor == 0 && has_payload;
    case message_type::direct_message:
    case message_type::routed_message:
      return h.dest_actor != 0 && has_payload;
    case message_type::monitor_message:
      return h.operation_data == 0 && has_payload;
    case message_type::down_message:
      return h.source_actor != 0 && h.dest_actor == 0 && h.operation_data == 0
             && has_payload;
    case message_type::heartbeat:
      return h.source_actor == 0 && h.dest_actor == 0 && h.operation_data == 0
             && !has_payload;
  }
  return false; // not an operation of BASP
}

} // namespace

namespace tally {

uint64_t basp_headers_checked() {
  return checked.load(std::memory_order_relaxed);
}

uint64_t basp_headers_rejected() {
  return rejected.total();
}

} // namespace tally

// Replaces libcaf_io's definition for this process (see the header). The
// link exports it (examples/CMakeLists.txt, --export-dynamic-symbol).
bool caf::io::basp::valid(const header& hdr) {
  checked.fetch_add(1, std::memory_order_relaxed);
  if (acceptable(hdr))
    return true;
  if (auto n = rejected.record(); n != 0)
    std::fprintf(stderr,
                 "mayfly-tally: rejected a malformed BASP header (operation "
                 "%u, payload %u bytes): connection closed; %llu so far\n",
                 static_cast<unsigned>(hdr.operation), hdr.payload_len,
                 static_cast<unsigned long long>(n));
  return false;
}
