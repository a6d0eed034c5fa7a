#include "examples/tally/tls_watch.hpp"

#include "examples/tally/log_throttle.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <dlfcn.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>

namespace {

std::atomic<uint64_t> completed{0};
tally::throttled_count failed; // each logged: log_throttle.hpp

using handshake_fn = int (*)(SSL*);

// OpenSSL's own function `name` (the next definition after this
// executable's). Resolved once; a missing one is a broken install.
handshake_fn real(const char* name) {
  auto* sym = dlvsym(RTLD_NEXT, name, "OPENSSL_3.0.0");
  if (sym == nullptr)
    sym = dlsym(RTLD_NEXT, name);
  if (sym == nullptr) {
    std::fprintf(stderr, "mayfly-tally: %s not found in libssl: %s\n", name,
                 dlerror());
    std::abort();
  }
  return reinterpret_cast<handshake_fn>(sym);
}

// Counts the outcome of one handshake step `ret` on `ssl`.
int count(SSL* ssl, int ret, const char* role) {
  if (ret == 1) {
    completed.fetch_add(1, std::memory_order_relaxed);
    return ret;
  }
  auto err = SSL_get_error(ssl, ret);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
    return ret; // not finished: CAF calls again when the bytes come
  // Peeking leaves OpenSSL's error queue to CAF, which clears it.
  if (auto n = failed.record(); n != 0) {
    const char* why = ERR_reason_error_string(ERR_peek_error());
    if (why == nullptr)
      why = err == SSL_ERROR_SYSCALL || err == SSL_ERROR_ZERO_RETURN
              ? "the peer closed the connection during the handshake"
              : "no reason given by OpenSSL";
    std::fprintf(stderr,
                 "mayfly-tally: TLS handshake failed (%s): %s; connection "
                 "closed; %llu so far\n",
                 role, why, static_cast<unsigned long long>(n));
  }
  return ret;
}

} // namespace

namespace tally {

uint64_t tls_handshakes_completed() {
  return completed.load(std::memory_order_relaxed);
}

uint64_t tls_handshakes_failed() {
  return failed.total();
}

} // namespace tally

// Replace libssl's definitions for this process (see the header); the link
// exports them (examples/CMakeLists.txt).
extern "C" int SSL_accept(SSL* ssl) {
  static const handshake_fn next = real("SSL_accept");
  return count(ssl, next(ssl), "accepting a peer");
}

extern "C" int SSL_connect(SSL* ssl) {
  static const handshake_fn next = real("SSL_connect");
  return count(ssl, next(ssl), "connecting to an aggregator");
}
