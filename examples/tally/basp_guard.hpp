// A stricter check of every BASP header this process receives, in place of
// CAF 0.17.6's own `caf::io::basp::valid` (docs/design/distribution.md,
// "What protects the port").
//
// Why: CAF's check accepts a handshake header that announces no payload,
// and `instance::handle` then dereferences the payload it does not have:
// the 32 bytes of issue 18 (b'\x01' + 31 zeros) end the process with
// SIGSEGV on CAF's multiplexer thread. TLS keeps such bytes away from
// peers without a certificate; this check keeps them from crashing the
// node even when they come from a peer that has one, or over plaintext on
// loopback.
//
// How: libcaf_io.so calls `valid` through its PLT (one call site, in
// `instance::handle`, for each received header), so a definition in the
// executable, exported to the dynamic symbol table, is the one it calls.
// This is symbol interposition, the mechanism LD_PRELOAD allocators use;
// it needs no rebuilt CAF, but it is tied to CAF 0.17's ABI: the stats say
// whether it is in effect (`headers_checked` grows with every connection),
// and integration.DistributionGuard.garbage-to-plaintext fails if it is not.
// A rejected header makes CAF close that one connection
// (`malformed_basp_message`); the node keeps serving.
//
// Thread safety: called by CAF on its multiplexer thread; the counters are
// atomics read from any thread.
#pragma once

#include <cstdint>

namespace tally {

/// Largest BASP payload accepted (a `slice_batch` is at most ~2 MiB).
/// CAF 0.17.6 would otherwise allocate whatever the header claims, up to
/// 4 GiB, for one peer.
constexpr uint32_t kMaxBaspPayload = 64u << 20;

/// Headers received and checked, in this process.
uint64_t basp_headers_checked();

/// Headers rejected (each closed its connection).
uint64_t basp_headers_rejected();

} // namespace tally
