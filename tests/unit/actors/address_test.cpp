#include <mayfly/actors/address.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>
#include <ostream>
#include <string>
#include <type_traits>

#include <gtest/gtest.h>


namespace mayfly {

/// Lets GoogleTest print addresses as "1.2.3.4:53".
inline void PrintTo(const udp_address& a, std::ostream* os) {
  *os << a.to_string();
}

} // namespace mayfly

using mayfly::errc;
using mayfly::udp_address;

static_assert(sizeof(udp_address) == sizeof(sockaddr_in6));
static_assert(std::is_trivially_copyable_v<udp_address>);

TEST(UdpAddress, DefaultIsUnspecified) {
  udp_address a;
  EXPECT_EQ(a.family(), AF_UNSPEC);
  EXPECT_FALSE(a.is_v6());
  EXPECT_EQ(a.port(), 0);
  EXPECT_EQ(a.size(), 0u);
  EXPECT_EQ(a.to_string(), "unspecified");
  EXPECT_EQ(a, udp_address{});
  EXPECT_EQ(udp_address::capacity(), sizeof(sockaddr_in6));
}

TEST(UdpAddress, ParsesIPv4WithPort) {
  auto res = udp_address::parse("127.0.0.1:9000");
  ASSERT_TRUE(res);
  auto& a = *res;
  EXPECT_EQ(a.family(), AF_INET);
  EXPECT_FALSE(a.is_v6());
  EXPECT_EQ(a.port(), 9000);
  EXPECT_EQ(a.size(), sizeof(sockaddr_in));
  auto* sin = reinterpret_cast<const sockaddr_in*>(a.sockaddr_ptr());
  EXPECT_EQ(sin->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
  EXPECT_EQ(sin->sin_port, htons(9000));
  EXPECT_EQ(a.to_string(), "127.0.0.1:9000");
}

TEST(UdpAddress, ParsesBracketedIPv6WithPort) {
  auto res = udp_address::parse("[::1]:53");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->family(), AF_INET6);
  EXPECT_TRUE(res->is_v6());
  EXPECT_EQ(res->port(), 53);
  EXPECT_EQ(res->size(), sizeof(sockaddr_in6));
  auto* sin6 = reinterpret_cast<const sockaddr_in6*>(res->sockaddr_ptr());
  EXPECT_TRUE(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
  EXPECT_EQ(res->to_string(), "[::1]:53");
}

TEST(UdpAddress, DefaultPortAppliesToBareAddresses) {
  auto v4 = udp_address::parse("10.1.2.3", 53);
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->to_string(), "10.1.2.3:53");
  auto v6 = udp_address::parse("2001:db8::1", 443);
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->to_string(), "[2001:db8::1]:443");
  auto bracketed = udp_address::parse("[fe80::1]", 7);
  ASSERT_TRUE(bracketed);
  EXPECT_EQ(bracketed->port(), 7);
  auto explicit_port = udp_address::parse("10.1.2.3:99", 53);
  ASSERT_TRUE(explicit_port);
  EXPECT_EQ(explicit_port->port(), 99);
  auto zero = udp_address::parse("0.0.0.0", 0);
  ASSERT_TRUE(zero);
  EXPECT_EQ(zero->port(), 0);
}

TEST(UdpAddress, PortBounds) {
  auto low = udp_address::parse("1.2.3.4:0");
  ASSERT_TRUE(low);
  EXPECT_EQ(low->port(), 0);
  auto high = udp_address::parse("[::]:65535");
  ASSERT_TRUE(high);
  EXPECT_EQ(high->port(), 65535);
}

TEST(UdpAddress, RejectsInvalidInput) {
  const char* cases[] = {
    "",                     // nothing
    "1.2.3.4",              // no port and no default
    "1.2.3.4:",             // empty port
    "1.2.3.4:65536",        // port out of range
    "1.2.3.4:-1",           // negative port
    "1.2.3.4:+1",           // sign
    "1.2.3.4:80x",          // trailing garbage
    "1.2.3.4: 80",          // space
    "1.2.3.256:80",         // octet out of range
    "1.2.3:80",             // too few octets
    "localhost:80",         // names are not resolved
    "::1",                  // bare IPv6 without a default port
    "[::1",                 // missing ']'
    "[::1]x",               // junk after ']'
    "[::1]:",               // empty port
    "[::1]:99999",          // port out of range
    "[not-an-address]:80",  // garbage in brackets
    "[::1]:80:80",          // two ports
    "1:2:3:4:5:6:7:8:9:10", // too many groups
    "0000000000000000000000000000000000000000000000001.2.3.4:1", // too long
  };
  for (const char* text : cases) {
    auto res = udp_address::parse(text);
    EXPECT_FALSE(res) << '"' << text << '"';
    if (!res) {
      EXPECT_EQ(res.error().code, errc::invalid_address) << text;
      EXPECT_STRNE(res.error().what, "") << text;
    }
  }
}

TEST(UdpAddress, ToStringRoundTrips) {
  const char* cases[] = {"127.0.0.1:9000",
                         "0.0.0.0:0",
                         "255.255.255.255:65535",
                         "[::1]:53",
                         "[::]:1",
                         "[2001:db8::abcd]:8443",
                         "[::ffff:10.0.0.1]:5000"};
  for (const char* text : cases) {
    auto res = udp_address::parse(text);
    ASSERT_TRUE(res) << text;
    EXPECT_EQ(res->to_string(), text);
    auto again = udp_address::parse(res->to_string());
    ASSERT_TRUE(again) << text;
    EXPECT_EQ(*again, *res) << text;
  }
}

TEST(UdpAddress, EqualityComparesFamilyAddressAndPort) {
  auto a = *udp_address::parse("10.0.0.1:53");
  auto same = *udp_address::parse("10.0.0.1:53");
  auto other_port = *udp_address::parse("10.0.0.1:54");
  auto other_host = *udp_address::parse("10.0.0.2:53");
  auto mapped = *udp_address::parse("[::ffff:10.0.0.1]:53");
  EXPECT_EQ(a, same);
  EXPECT_FALSE(a != same);
  EXPECT_NE(a, other_port);
  EXPECT_NE(a, other_host);
  EXPECT_NE(a, mapped); // different families are different peers
  EXPECT_NE(a, udp_address{});
  auto v6 = *udp_address::parse("[2001:db8::1]:53");
  auto v6_same = *udp_address::parse("[2001:db8:0::1]:53");
  auto v6_other = *udp_address::parse("[2001:db8::2]:53");
  EXPECT_EQ(v6, v6_same);
  EXPECT_NE(v6, v6_other);
}

TEST(UdpAddress, FromSockaddr) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(1234);
  sin.sin_addr.s_addr = htonl(0x7f000001);
  udp_address a{reinterpret_cast<sockaddr*>(&sin), sizeof(sin)};
  EXPECT_EQ(a, *udp_address::parse("127.0.0.1:1234"));
  EXPECT_EQ(std::memcmp(a.sockaddr_ptr(), &sin, sizeof(sin)), 0);

  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(53);
  sin6.sin6_addr = in6addr_loopback;
  udp_address b{reinterpret_cast<sockaddr*>(&sin6), sizeof(sin6)};
  EXPECT_EQ(b, *udp_address::parse("[::1]:53"));

  // Too short for its family, a foreign family, or null: unspecified.
  udp_address short_len{reinterpret_cast<sockaddr*>(&sin6), sizeof(sin)};
  EXPECT_EQ(short_len.family(), AF_UNSPEC);
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  udp_address unix_addr{reinterpret_cast<sockaddr*>(&sun), sizeof(sun)};
  EXPECT_EQ(unix_addr.family(), AF_UNSPEC);
  udp_address null_addr{nullptr, 0};
  EXPECT_EQ(null_addr.family(), AF_UNSPEC);
}

TEST(UdpAddress, MutableSockaddrIsTheStorage) {
  udp_address a;
  auto* sin = reinterpret_cast<sockaddr_in*>(a.sockaddr_ptr());
  sin->sin_family = AF_INET;
  sin->sin_port = htons(80);
  sin->sin_addr.s_addr = htonl(0x0a000001);
  EXPECT_EQ(a.to_string(), "10.0.0.1:80");
}

// Issue 15: a bad address string printed "assertion failed: v_.index() ==
// 0 (result.hpp:67)"; misuse now prints what the error is.
TEST(ResultDeathTest, UsingAFailedResultPrintsItsMessage) {
  auto bad = mayfly::udp_address::parse("localhost:9000");
  ASSERT_FALSE(bad);
  EXPECT_DEATH((void) *bad,
               "used the value of a failed result: 'localhost:9000': not a "
               "numeric IPv4 or IPv6 address");
  EXPECT_DEATH((void) bad->port(), "'localhost:9000'");
  EXPECT_DEATH((void) bad.value(), "'localhost:9000'");
}

