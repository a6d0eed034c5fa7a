#include <mayfly/actors/address.hpp>

#include <arpa/inet.h>

#include <charconv>
#include <cstdio>

namespace mayfly {

udp_address::udp_address(const sockaddr* sa, socklen_t len) noexcept
  : udp_address() {
  if (sa == nullptr)
    return;
  if (sa->sa_family == AF_INET && len >= sizeof(sockaddr_in))
    std::memcpy(&storage_.v4, sa, sizeof(sockaddr_in));
  else if (sa->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6))
    std::memcpy(&storage_.v6, sa, sizeof(sockaddr_in6));
}

namespace {

// The error for `text`, naming it: "'abc': not a numeric ... address".
error_info bad_address(std::string_view text, const char* what) {
  return {errc::invalid_address, what, 0,
          "'" + std::string{text} + "'"};
}

} // namespace

result<udp_address> udp_address::parse(std::string_view text,
                                       int default_port) {
  std::string_view host = text;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos)
      return bad_address(text, "missing ']' in IPv6 address");
    host = text.substr(1, close - 1);
    auto rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':')
        return bad_address(text, "expected ':' after ']'");
      port_text = rest.substr(1);
    }
  } else if (auto colon = text.rfind(':'); colon != std::string_view::npos
                                            && text.find(':') == colon) {
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  int port = default_port;
  if (!port_text.empty() || port < 0) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port_text.data(),
                                     port_text.data() + port_text.size(),
                                     value);
    if (ec != std::errc{} || end != port_text.data() + port_text.size()
        || port_text.empty() || value > 65535)
      return bad_address(text, "port must be a number in 0..65535");
    port = static_cast<int>(value);
  }
  char buf[INET6_ADDRSTRLEN + 1];
  if (host.size() >= sizeof(buf))
    return bad_address(text, "address too long");
  std::memcpy(buf, host.data(), host.size());
  buf[host.size()] = '\0';
  udp_address result;
  if (inet_pton(AF_INET, buf, &result.storage_.v4.sin_addr) == 1) {
    result.storage_.v4.sin_family = AF_INET;
    result.storage_.v4.sin_port = htons(static_cast<uint16_t>(port));
    return result;
  }
  if (inet_pton(AF_INET6, buf, &result.storage_.v6.sin6_addr) == 1) {
    result.storage_.v6.sin6_family = AF_INET6;
    result.storage_.v6.sin6_port = htons(static_cast<uint16_t>(port));
    return result;
  }
  return bad_address(text, "not a numeric IPv4 or IPv6 address");
}

std::string udp_address::to_string() const {
  char host[INET6_ADDRSTRLEN] = {};
  char text[INET6_ADDRSTRLEN + 16];
  switch (family()) {
    case AF_INET:
      inet_ntop(AF_INET, &storage_.v4.sin_addr, host, sizeof(host));
      std::snprintf(text, sizeof(text), "%s:%u", host, port());
      return text;
    case AF_INET6:
      inet_ntop(AF_INET6, &storage_.v6.sin6_addr, host, sizeof(host));
      std::snprintf(text, sizeof(text), "[%s]:%u", host, port());
      return text;
    default:
      return "unspecified";
  }
}

uint16_t udp_address::port() const noexcept {
  switch (family()) {
    case AF_INET:
      return ntohs(storage_.v4.sin_port);
    case AF_INET6:
      return ntohs(storage_.v6.sin6_port);
    default:
      return 0;
  }
}

bool udp_address::is_unspecified() const noexcept {
  switch (family()) {
    case AF_INET:
      return storage_.v4.sin_addr.s_addr == htonl(INADDR_ANY);
    case AF_INET6:
      return IN6_IS_ADDR_UNSPECIFIED(&storage_.v6.sin6_addr);
    default:
      return false;
  }
}

socklen_t udp_address::size() const noexcept {
  switch (family()) {
    case AF_INET:
      return sizeof(sockaddr_in);
    case AF_INET6:
      return sizeof(sockaddr_in6);
    default:
      return 0;
  }
}

bool operator==(const udp_address& x, const udp_address& y) noexcept {
  if (x.family() != y.family())
    return false;
  switch (x.family()) {
    case AF_INET:
      return x.storage_.v4.sin_port == y.storage_.v4.sin_port
             && x.storage_.v4.sin_addr.s_addr == y.storage_.v4.sin_addr.s_addr;
    case AF_INET6:
      return x.storage_.v6.sin6_port == y.storage_.v6.sin6_port
             && std::memcmp(&x.storage_.v6.sin6_addr, &y.storage_.v6.sin6_addr,
                            sizeof(in6_addr))
                  == 0
             && x.storage_.v6.sin6_scope_id == y.storage_.v6.sin6_scope_id;
    default:
      return true;
  }
}

} // namespace mayfly
