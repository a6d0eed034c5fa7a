// What protects mayfly-tally's TCP port between nodes: the flags, their
// checks, and the CAF modules they load (docs/design/distribution.md,
// "What protects the port").
//
// CAF 0.17.6's BASP parser crashes on 32 bytes from anyone who can open a
// TCP connection to a node (a client handshake header that announces no
// payload: `instance::handle` dereferences the missing payload). Two guards:
// TLS with mutual authentication through CAF's own `caf::openssl` module
// (here), so that BASP parses no byte from a peer whose certificate a CA of
// the operator's did not sign; and a stricter header check for the peers
// that get through (basp_guard.hpp). Plaintext BASP remains for
// loopback-only deployments that ask for it by name (`--plaintext 1`); it
// is never the default and never accepted for another address.
//
// Thread safety: plain functions; `publish` and `unpublish` block on the
// middleman like CAF's own counterparts and must not be called from an
// actor's handler.
#pragma once

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/expected.hpp>
#include <caf/io/middleman_actor.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace tally {

/// How this node talks BASP to the other: TLS with mutual authentication
/// (all three files given) or, only on loopback and only when asked,
/// plaintext.
struct transport {
  std::string cert;      ///< PEM: this node's certificate (chain)
  std::string key;       ///< PEM: its private key (unencrypted)
  std::string ca;        ///< PEM: the CA(s) a peer's certificate must chain to
  std::string plaintext; ///< "1": allow plaintext BASP (loopback only)

  bool tls() const {
    return !cert.empty();
  }
};

/// A TCP endpoint to publish on or connect to.
struct tcp_endpoint {
  std::string host; ///< numeric address or host name, without brackets
  uint16_t port = 0;
};

/// Parses `--publish [ADDR:]PORT`: the address defaults to 127.0.0.1 (an
/// aggregator node is reachable from elsewhere only when told so); PORT is
/// 0 (any) to 65535; an IPv6 address is written in brackets, `[::1]:7001`.
/// Returns an empty string on success, else what is wrong.
std::string parse_publish(std::string_view text, tcp_endpoint& out);

/// Parses `--aggregators HOST:PORT` (PORT 1 to 65535; `[V6]:PORT`).
std::string parse_connect(std::string_view text, tcp_endpoint& out);

/// True for 127.0.0.0/8, ::1, ::ffff:127.0.0.0/104 and "localhost".
bool is_loopback(const std::string& host);

/// Checks `t` for a node that publishes on or connects to `where`: either
/// all three TLS files are given, readable, the key matches the
/// certificate and the certificate chains to the CA; or `--plaintext 1`
/// and `where` is a loopback address. Loading the files here, at start,
/// matters: CAF loads them again for every connection and throws (which
/// ends the process from its multiplexer thread) if that fails.
/// Returns an empty string on success, else what is wrong.
std::string check(const transport& t, const tcp_endpoint& where);

/// Loads CAF's io module and, for TLS, its openssl module with `t`'s files.
/// @pre `check(t, ...)` succeeded.
void configure(caf::actor_system_config& cfg, const transport& t);

/// The middleman actor to ask for connections: CAF's TLS one or its
/// plaintext one.
caf::io::middleman_actor middleman_for(caf::actor_system& sys,
                                       const transport& t);

/// Publishes `whom` on `where` with `t` (TLS: BASP behind a TLS handshake
/// that requires a certificate signed by `t.ca`). Returns the bound port.
caf::expected<uint16_t> publish(caf::actor_system& sys, const transport& t,
                                const caf::actor& whom,
                                const tcp_endpoint& where);

/// Closes what `publish` opened (blocks until the middleman did).
void unpublish(caf::actor_system& sys, const transport& t,
               const caf::actor& whom, uint16_t port);

/// One line for the log: what protects the port.
std::string describe(const transport& t);

} // namespace tally
