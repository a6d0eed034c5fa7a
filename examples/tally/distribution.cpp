#include "examples/tally/distribution.hpp"

#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>
#include <caf/openssl/publish.hpp>
#include <caf/scoped_actor.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <memory>

namespace tally {

namespace {

// "PORT" or "[V6]:PORT" / "HOST:PORT"; the port must be all digits.
std::string parse_port(std::string_view text, uint16_t& port) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(),
                                   value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size()
      || value > 65535)
    return "'" + std::string{text} + "' is not a port (0 to 65535)";
  port = static_cast<uint16_t>(value);
  return {};
}

// Splits "HOST:PORT" or "[V6]:PORT"; `host` empty when there is no colon.
std::string split(std::string_view text, std::string& host,
                  std::string_view& port) {
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size()
        || text[close + 1] != ':')
      return "expected [ADDRESS]:PORT, got '" + std::string{text} + "'";
    host = std::string{text.substr(1, close - 1)};
    port = text.substr(close + 2);
    return {};
  }
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    host.clear();
    port = text;
    return {};
  }
  host = std::string{text.substr(0, colon)};
  port = text.substr(colon + 1);
  if (host.find(':') != std::string::npos)
    return "write an IPv6 address in brackets: [" + host + "]:PORT";
  return {};
}

std::string ssl_errors() {
  std::string msg;
  while (auto e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!msg.empty())
      msg += "; ";
    msg += buf;
  }
  return msg.empty() ? "unknown OpenSSL error" : msg;
}

// Loads the three files as CAF's TLS session will, once, now; and checks
// that this node's own certificate chains to the CA it demands of peers
// (a node whose certificate its peers reject fails only at connect time,
// far from the cause).
std::string check_tls_files(const transport& t) {
  ERR_clear_error();
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx{
    SSL_CTX_new(TLS_method()), SSL_CTX_free};
  if (!ctx)
    return "cannot create a TLS context: " + ssl_errors();
  // The key first: loading the certificate then drops a key that does not
  // match it, which the check below names.
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), t.key.c_str(), SSL_FILETYPE_PEM)
      != 1)
    return "cannot load the private key '" + t.key
           + "' (an unencrypted PEM key): " + ssl_errors();
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), t.cert.c_str()) != 1)
    return "cannot load the certificate '" + t.cert + "': " + ssl_errors();
  if (SSL_CTX_check_private_key(ctx.get()) != 1)
    return "the private key '" + t.key + "' does not match the certificate '"
           + t.cert + "'";
  if (SSL_CTX_load_verify_locations(ctx.get(), t.ca.c_str(), nullptr) != 1)
    return "cannot load the CA certificate(s) '" + t.ca + "': " + ssl_errors();
  auto* own = SSL_CTX_get0_certificate(ctx.get());
  STACK_OF(X509)* chain = nullptr;
  SSL_CTX_get0_chain_certs(ctx.get(), &chain);
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> verify{
    X509_STORE_CTX_new(), X509_STORE_CTX_free};
  if (!verify
      || X509_STORE_CTX_init(verify.get(), SSL_CTX_get_cert_store(ctx.get()),
                             own, chain)
           != 1)
    return "cannot verify the certificate: " + ssl_errors();
  if (X509_verify_cert(verify.get()) != 1)
    return "the certificate '" + t.cert + "' does not chain to the CA '" + t.ca
           + "': "
           + X509_verify_cert_error_string(
             X509_STORE_CTX_get_error(verify.get()));
  return {};
}

} // namespace

std::string parse_publish(std::string_view text, tcp_endpoint& out) {
  std::string_view port;
  if (auto err = split(text, out.host, port); !err.empty())
    return err;
  if (out.host.empty())
    out.host = "127.0.0.1";
  return parse_port(port, out.port);
}

std::string parse_connect(std::string_view text, tcp_endpoint& out) {
  std::string_view port;
  if (auto err = split(text, out.host, port); !err.empty())
    return err;
  if (out.host.empty())
    return "expected HOST:PORT, got '" + std::string{text} + "'";
  if (auto err = parse_port(port, out.port); !err.empty())
    return err;
  if (out.port == 0)
    return "port 0 in '" + std::string{text} + "': give the port to connect to";
  return {};
}

bool is_loopback(const std::string& host) {
  if (host == "localhost")
    return true;
  in_addr v4;
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1)
    return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6;
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6))
      return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

std::string check(const transport& t, const tcp_endpoint& where) {
  auto given = !t.cert.empty() + !t.key.empty() + !t.ca.empty();
  if (!t.plaintext.empty() && t.plaintext != "1" && t.plaintext != "0")
    return "--plaintext: expected 1 or 0, got '" + t.plaintext + "'";
  auto plaintext = t.plaintext == "1";
  if (given == 0) {
    if (!plaintext)
      return "give --tls-cert, --tls-key and --tls-ca (mutual TLS, "
             "tools/make-tally-certs.sh makes them), or --plaintext 1 on a "
             "loopback address";
    if (!is_loopback(where.host))
      return "plaintext BASP on '" + where.host
             + "' refused: it is not a loopback address, and any peer that "
               "reaches the port could speak BASP to the aggregators "
               "unauthenticated; use "
               "--tls-cert, --tls-key and --tls-ca";
    return {};
  }
  if (plaintext)
    return "--plaintext 1 and --tls-* exclude each other";
  if (given != 3)
    return "TLS needs all three of --tls-cert, --tls-key and --tls-ca";
  return check_tls_files(t);
}

void configure(caf::actor_system_config& cfg, const transport& t) {
  cfg.load<caf::io::middleman>();
  if (!t.tls())
    return;
  // Any of these set turns on CAF's authenticated mode: the peer must
  // present a certificate that chains to `openssl_cafile`, both ways
  // (SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT).
  cfg.openssl_certificate = t.cert;
  cfg.openssl_key = t.key;
  cfg.openssl_cafile = t.ca;
  cfg.load<caf::openssl::manager>();
}

caf::io::middleman_actor middleman_for(caf::actor_system& sys,
                                       const transport& t) {
  return t.tls() ? sys.openssl_manager().actor_handle()
                 : sys.middleman().actor_handle();
}

caf::expected<uint16_t> publish(caf::actor_system& sys, const transport& t,
                                const caf::actor& whom,
                                const tcp_endpoint& where) {
  if (t.tls())
    return caf::openssl::publish(whom, where.port, where.host.c_str(), true);
  return sys.middleman().publish(whom, where.port, where.host.c_str(), true);
}

void unpublish(caf::actor_system& sys, const transport& t,
               const caf::actor& whom, uint16_t port) {
  using namespace std::chrono_literals;
  if (!t.tls()) {
    (void) sys.middleman().unpublish(whom, port);
    return;
  }
  // (caf::openssl::unpublish in 0.17.6's header does not compile: it names
  // 0.18's `unpublish_atom_v` and omits the actor.)
  caf::scoped_actor self{sys};
  self
    ->request(sys.openssl_manager().actor_handle(), 5s,
              caf::unpublish_atom::value, whom.address(), port)
    .receive([] {}, [](const caf::error&) {});
}

std::string describe(const transport& t) {
  if (t.tls())
    return "TLS, mutual authentication: peers need a certificate signed by "
           + t.ca;
  return "plaintext on loopback (--plaintext 1): any local user can reach "
         "the aggregators";
}

} // namespace tally
