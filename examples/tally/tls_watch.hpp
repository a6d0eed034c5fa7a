// Counts the TLS handshakes of a distributed tally node, completed and
// failed, and logs why one failed (docs/design/distribution.md, "What
// protects the port").
//
// Why: CAF 0.17.6's OpenSSL module reports a failed handshake nowhere (no
// hook, logging compiled out), so a port under attack by peers without a
// valid certificate would look idle. The handshake is where such peers end.
//
// How: libcaf_openssl.so calls `SSL_accept` and `SSL_connect` through its
// PLT (two call sites each, checked with `objdump -d`), so mayfly-tally
// defines both, exports them (`--export-dynamic-symbol`, like
// basp_guard.hpp's `valid`), counts the outcome and calls OpenSSL's own
// (found with `dlvsym(RTLD_NEXT, ...)`). A call that only needs more bytes
// (SSL_ERROR_WANT_READ/WRITE) is neither: CAF calls again when they come.
// integration.DistributionGuard.unauthenticated-peer fails if the counts do
// not move, so the interposition being lost shows.
//
// Thread safety: called on CAF's multiplexer thread; the counters are
// atomics read from any thread. Cost: one relaxed increment per handshake.
#pragma once

#include <cstdint>

namespace tally {

/// Handshakes that completed (as server: SSL_accept; as client:
/// SSL_connect), in this process.
uint64_t tls_handshakes_completed();

/// Handshakes that failed (bad or missing certificate, another CA, not TLS
/// at all, the peer hung up half-way); each closed its connection.
uint64_t tls_handshakes_failed();

} // namespace tally
