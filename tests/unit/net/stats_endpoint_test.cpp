// The HTTP stats endpoint on real loopback sockets: /stats (compact and
// pretty), /metrics (checked by the exposition parser of
// prometheus_test.cpp), the page, errors (404, 405, 400, 414, 403), figures
// that move with traffic, balances after stop, and hostile clients (garbage,
// overlong headers, a stalled half request, many connections at once)
// handled without crash while other clients are served (slow clients and
// Host refusals: stats_denial_test.cpp).
//
// Requests are written by hand over TCP (raw sockets with timeouts): every
// wait is bounded and nothing asserts on time.

#include <mayfly/net/stats_endpoint.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <thread>

#include <mayfly/actors/runtime.hpp>
#include "tests/support/small_runtime.hpp"
#include <mayfly/net/prometheus.hpp>
#include <mayfly/net/stats_page.hpp>
#include <mayfly/net/udp_endpoint.hpp>
#include "exposition.hpp"
#include "tests/support/loopback_endpoints.hpp"
#include "tests/support/net_clients.hpp"

namespace {

using namespace mayfly;
using json = nlohmann::json;

struct http_response {
  int status = 0; ///< 0: no response (connection closed or timed out)
  std::map<std::string, std::string> headers; ///< names lower-cased
  std::string body;

  std::string header(const std::string& name) const {
    auto i = headers.find(name);
    return i == headers.end() ? "" : i->second;
  }
};

/// A TCP connection that reads HTTP responses one by one (keep-alive).
class http_connection : public test::tcp_client {
public:
  using tcp_client::tcp_client;

  /// Reads one response: headers, then Content-Length bytes of body (none
  /// for HEAD), or everything up to EOF without a length. status 0 if the
  /// connection ends or times out first.
  http_response read_response(bool head = false) {
    http_response r;
    for (int i = 0; i < 100000; ++i) {
      auto end = buf_.find("\r\n\r\n");
      if (end != std::string::npos && parse_head(end, r)) {
        auto body_start = end + 4;
        auto len = r.header("content-length");
        if (head) {
          buf_.erase(0, body_start);
          return r;
        }
        if (!len.empty()) {
          auto n = std::stoul(len);
          if (buf_.size() - body_start >= n) {
            r.body = buf_.substr(body_start, n);
            buf_.erase(0, body_start + n);
            return r;
          }
        } else if (eof_) {
          r.body = buf_.substr(body_start);
          buf_.clear();
          return r;
        }
      }
      if (eof_)
        return http_response{};
      char chunk[16384];
      auto n = ::recv(fd(), chunk, sizeof(chunk), 0);
      if (n <= 0) {
        eof_ = true; // EOF, reset or timeout
        continue;
      }
      buf_.append(chunk, static_cast<size_t>(n));
    }
    return http_response{};
  }

private:
  bool parse_head(size_t end, http_response& r) {
    auto head = buf_.substr(0, end);
    auto line_end = head.find("\r\n");
    auto status_line = head.substr(0, line_end);
    if (status_line.compare(0, 9, "HTTP/1.1 ") != 0
        && status_line.compare(0, 9, "HTTP/1.0 ") != 0)
      return false;
    r.status = std::atoi(status_line.c_str() + 9);
    r.headers.clear();
    size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
    while (pos < head.size()) {
      auto next = head.find("\r\n", pos);
      if (next == std::string::npos)
        next = head.size();
      auto line = head.substr(pos, next - pos);
      auto colon = line.find(':');
      if (colon != std::string::npos) {
        auto name = line.substr(0, colon);
        for (auto& c : name)
          c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        auto value = line.substr(colon + 1);
        value.erase(0, value.find_first_not_of(' '));
        r.headers[name] = value;
      }
      pos = next + 2;
    }
    return true;
  }

  bool eof_ = false;
  std::string buf_;
};


class StatsEndpoint : public ::testing::Test {
protected:
  void SetUp() override {
    auto made = runtime::make(test::small_runtime_config());
    ASSERT_TRUE(made) << made.error().message();
    rt = std::move(*made);
    auto& h = test::add_echo_handler(*rt);
    udp = test::open_udp_on_loopback(*rt, h);
    ASSERT_NE(udp, nullptr);
    stats = test::open_stats_on_loopback(*rt);
    ASSERT_NE(stats, nullptr);
    rt->start();
  }

  void TearDown() override {
    test::stop_and_expect_balanced(rt);
  }

  std::string host() const {
    return "127.0.0.1:" + std::to_string(stats->local_address().port());
  }

  /// One request on a fresh connection (Connection: close).
  http_response request(const std::string& method, const std::string& target,
                        const std::string& extra_headers = "",
                        const std::string& body = "") {
    return request_to(*stats, method, target, extra_headers, body);
  }

  http_response request_to(stats_endpoint& ep, const std::string& method,
                           const std::string& target,
                           const std::string& extra_headers = "",
                           const std::string& body = "") {
    http_connection c{ep.local_address()};
    EXPECT_TRUE(c.connected());
    std::string req = method + " " + target + " HTTP/1.1\r\nHost: "
                      + "127.0.0.1:"
                      + std::to_string(ep.local_address().port())
                      + "\r\nConnection: close\r\n" + extra_headers;
    if (!body.empty())
      req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    req += "\r\n" + body;
    EXPECT_TRUE(c.send(req));
    return c.read_response(method == "HEAD");
  }

  http_response get(const std::string& target) {
    return request("GET", target);
  }

  json stats_json() {
    auto r = get("/stats");
    EXPECT_EQ(r.status, 200);
    return json::parse(r.body, nullptr, false);
  }

  /// Sends `n` datagrams to the echo endpoint and waits for each reply.
  void echo(int n) {
    test::udp_client client{udp->local_address()};
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(client.send("ping " + std::to_string(i)));
      ASSERT_TRUE(client.receive()) << "no echo for datagram " << i;
    }
  }

  std::unique_ptr<runtime> rt;
  udp_endpoint* udp = nullptr;
  stats_endpoint* stats = nullptr;
};

// -- the document --------------------------------------------------------------

TEST_F(StatsEndpoint, BindsLoopbackAndNamesItself) {
  EXPECT_EQ(stats->local_address().family(), AF_INET);
  EXPECT_NE(stats->local_address().port(), 0);
  EXPECT_EQ(stats->name(), "http:" + host());
}

TEST_F(StatsEndpoint, StatsIsCompactJsonWithEverySection) {
  auto r = get("/stats");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_EQ(r.header("cache-control"), "no-store");
  EXPECT_EQ(r.body.find('\n'), std::string::npos); // compact
  auto doc = json::parse(r.body, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << r.body;
  EXPECT_EQ(doc["schema"], 1);
  for (auto section : {"runtime", "pools", "arenas", "binaries", "handlers",
                       "net"})
    EXPECT_TRUE(doc.contains(section)) << section;
  EXPECT_TRUE(doc["handlers"].contains("echo"));
  EXPECT_TRUE(doc["net"].contains(udp->name()));
  EXPECT_TRUE(doc["net"].contains(stats->name()));
  EXPECT_EQ(doc["runtime"]["state"], "running");
  EXPECT_TRUE(doc["pools"]["standard"].contains("binaries"));
}

TEST_F(StatsEndpoint, PrettyIsIndentedAndTheSameDocument) {
  auto r = get("/stats?pretty");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_NE(r.body.find("{\n  \""), std::string::npos) << r.body.substr(0, 80);
  auto pretty = json::parse(r.body, nullptr, false);
  ASSERT_FALSE(pretty.is_discarded());
  auto compact = stats_json();
  ASSERT_TRUE(compact.is_object());
  for (auto& [key, value] : compact.items())
    EXPECT_TRUE(pretty.contains(key)) << key;
  EXPECT_EQ(get("/stats?pretty=1").body.find("{\n  \""), 0u);
}

TEST_F(StatsEndpoint, FiguresMoveWithTraffic) {
  auto before = stats_json();
  auto udp_name = udp->name();
  auto in0 = before["net"][udp_name]["datagrams_in"].get<int64_t>();
  auto spawned0 = before["handlers"]["echo"]["spawned"].get<int64_t>();
  echo(25);
  auto after = stats_json();
  // A reply can reach the client before sendmmsg returned to the IO thread
  // and counted it: look again (bounded) until the count is there.
  for (int i = 0;
       i < 2000 && after["net"][udp_name]["datagrams_out"].get<int64_t>() < 25;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    after = stats_json();
  }
  EXPECT_EQ(after["net"][udp_name]["datagrams_in"].get<int64_t>(), in0 + 25);
  EXPECT_EQ(after["handlers"]["echo"]["spawned"].get<int64_t>(), spawned0 + 25);
  EXPECT_GE(after["net"][udp_name]["datagrams_out"].get<int64_t>(), 25);
  EXPECT_GE(after["pools"]["standard"]["acquisitions"].get<int64_t>(), 25);
  EXPECT_GE(after["arenas"]["leases"].get<int64_t>(), 25);
  EXPECT_GT(after["runtime"]["uptime_s"].get<double>(),
            before["runtime"]["uptime_s"].get<double>());
}

TEST_F(StatsEndpoint, CountsItsOwnRequests) {
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(get("/stats").status, 200);
  ASSERT_EQ(get("/nowhere").status, 404);
  auto mine = stats_json()["net"][stats->name()];
  EXPECT_EQ(mine["address"], host());
  // Counted before the client sees the response: exact.
  EXPECT_EQ(mine["requests"].get<int64_t>(), 4);
  EXPECT_EQ(mine["responses"]["200"].get<int64_t>(), 3);
  EXPECT_EQ(mine["responses"]["404"].get<int64_t>(), 1);
  EXPECT_GE(mine["connections"].get<int64_t>(), 5);
  EXPECT_GT(mine["bytes_out"].get<int64_t>(), 0);
  EXPECT_GT(mine["bytes_in"].get<int64_t>(), 0);
  EXPECT_EQ(mine["threads"], 1); // one event thread (libmicrohttpd)
}

TEST_F(StatsEndpoint, NeverShowsPayloadBytes) {
  test::udp_client client{udp->local_address()};
  ASSERT_TRUE(client.send("MAYFLY-SECRET-PAYLOAD-7d3f"));
  ASSERT_TRUE(client.receive());
  for (auto target : {"/stats", "/stats?pretty", "/metrics"}) {
    auto r = get(target);
    ASSERT_EQ(r.status, 200) << target;
    EXPECT_EQ(r.body.find("MAYFLY-SECRET"), std::string::npos) << target;
  }
}

TEST_F(StatsEndpoint, MetricsParseAsPrometheusText) {
  echo(5);
  auto r = get("/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  auto p = test::parse_exposition(r.body);
  EXPECT_EQ(p.error, "") << r.body;
  EXPECT_GT(p.types.size(), 50u);
  for (auto& [name, type] : p.types) {
    bool total = name.size() > 6 && name.substr(name.size() - 6) == "_total";
    EXPECT_EQ(type == "counter", total) << name;
    EXPECT_EQ(name.rfind("mayfly_", 0), 0u) << name;
  }
  auto udp_label = "{endpoint=\"" + udp->name() + "\"}";
  EXPECT_GE(p.series["mayfly_net_datagrams_in_total" + udp_label], 5);
  EXPECT_GE(p.series["mayfly_handlers_spawned_total{handler=\"echo\"}"], 5);
  EXPECT_EQ(p.series.count("mayfly_pools_in_use{pool=\"standard\"}"), 1u);
  EXPECT_EQ(p.series.count("mayfly_runtime_uptime_seconds"), 1u);
  EXPECT_EQ(p.series.count("mayfly_runtime_info{overload=\"pause\",state="
                           "\"running\",worker_idle=\"poll\"}"),
            1u);
  EXPECT_EQ(p.series.count("mayfly_net_requests_total{endpoint=\""
                           + stats->name() + "\"}"),
            1u);
  EXPECT_EQ(p.series.count("mayfly_net_responses_total{endpoint=\""
                           + stats->name() + "\",code=\"200\"}"),
            1u);
}

// Every figure of a real service (runtime, echo handler, UDP endpoint,
// this stats endpoint, user statistics) after traffic has a description:
// /metrics has no untyped family and every family its HELP and TYPE, and
// the /stats document, typed by the runtime's descriptions, leaves nothing
// undescribed (numbers or strings).
TEST_F(StatsEndpoint, EveryFigureIsDescribed) {
  auto lines = rt->counter("lines", "lines received", "lines");
  ASSERT_TRUE(lines) << lines.error().message();
  auto depth = rt->gauge("queue_depth", "lines waiting");
  ASSERT_TRUE(depth) << depth.error().message();
  lines->add(3);
  depth->add(2);
  echo(5);
  ASSERT_EQ(get("/nowhere").status, 404); // a second status code
  auto r = get("/metrics");
  ASSERT_EQ(r.status, 200);
  auto p = test::parse_exposition(r.body);
  EXPECT_EQ(p.error, "") << r.body;
  for (auto& [name, type] : p.types) {
    EXPECT_NE(type, "untyped") << name;
    EXPECT_NE(r.body.find("# HELP " + name + " "), std::string::npos) << name;
  }
  EXPECT_EQ(r.body.find("without a description"), std::string::npos)
    << r.body;
  auto doc = stats_json();
  ASSERT_TRUE(doc.is_object());
  auto described = rt->stats().descriptions();
  auto text = to_prometheus(doc, described);
  EXPECT_EQ(text.find("without a description"), std::string::npos) << text;
  EXPECT_EQ(text.find("untyped"), std::string::npos) << text;
}

TEST_F(StatsEndpoint, UserStatisticsAppearInStatsAndMetrics) {
  auto lines = rt->counter("lines", "syslog lines received", "lines");
  ASSERT_TRUE(lines) << lines.error().message();
  auto depth = rt->gauge("queue_depth", "lines waiting to be written");
  ASSERT_TRUE(depth) << depth.error().message();
  lines->add();
  lines->add(2);
  depth->add(5);
  depth->sub(1);
  auto doc = stats_json();
  EXPECT_EQ(doc["counters"]["lines"], 3);
  EXPECT_EQ(doc["gauges"]["queue_depth"], 4);
  auto r = get("/metrics");
  ASSERT_EQ(r.status, 200);
  auto p = test::parse_exposition(r.body);
  EXPECT_EQ(p.error, "") << r.body;
  EXPECT_EQ(p.types["mayfly_counters_lines_total"], "counter");
  EXPECT_EQ(p.series["mayfly_counters_lines_total"], 3);
  EXPECT_EQ(p.types["mayfly_gauges_queue_depth"], "gauge");
  EXPECT_EQ(p.series["mayfly_gauges_queue_depth"], 4);
  EXPECT_NE(r.body.find("# HELP mayfly_counters_lines_total syslog lines "
                        "received [lines]"),
            std::string::npos)
    << r.body;
}

TEST_F(StatsEndpoint, PageIsSelfContained) {
  auto r = get("/");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-type"), "text/html; charset=utf-8");
  auto csp = r.header("content-security-policy");
  EXPECT_NE(csp.find("default-src 'none'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("connect-src 'self'"), std::string::npos) << csp;
  EXPECT_EQ(r.body.rfind("<!doctype html>", 0), 0u);
  EXPECT_NE(r.body.find("<script>"), std::string::npos);
  EXPECT_NE(r.body.find("fetch('/stats'"), std::string::npos);
  EXPECT_NE(r.body.find("</html>"), std::string::npos);
  // Nothing fetched from elsewhere.
  EXPECT_EQ(r.body.find("http://"), std::string::npos);
  EXPECT_EQ(r.body.find("https://"), std::string::npos);
  EXPECT_EQ(r.body.find(" src="), std::string::npos);
  EXPECT_EQ(r.body.find("<link"), std::string::npos);
  EXPECT_EQ(r.body, std::string{stats_page_html()});
}

// -- errors -------------------------------------------------------------------

TEST_F(StatsEndpoint, UnknownPathIs404WithJson) {
  for (auto target : {"/nope", "/stats/", "/metrics/x", "/%00%ff"}) {
    auto r = get(target);
    ASSERT_EQ(r.status, 404) << target;
    EXPECT_EQ(r.header("content-type"), "application/json");
    auto body = json::parse(r.body, nullptr, false);
    ASSERT_FALSE(body.is_discarded()) << r.body;
    EXPECT_EQ(body["error"], "not found");
    EXPECT_TRUE(body["path"].is_string());
  }
  auto body = json::parse(get("/nope").body);
  EXPECT_EQ(body["path"], "/nope");
}

TEST_F(StatsEndpoint, OtherMethodsAre405WithAllow) {
  for (auto method : {"POST", "PUT", "DELETE", "PATCH", "OPTIONS"}) {
    auto r = request(method, "/stats", "", "x=1");
    ASSERT_EQ(r.status, 405) << method;
    EXPECT_NE(r.header("allow").find("GET"), std::string::npos) << method;
    EXPECT_EQ(r.header("content-type"), "application/json");
    auto body = json::parse(r.body, nullptr, false);
    ASSERT_FALSE(body.is_discarded()) << r.body;
    EXPECT_EQ(body["error"], "method not allowed");
    EXPECT_EQ(body["method"], method);
  }
  // A large announced body is not read.
  auto r = request("POST", "/stats", "Content-Length: 100000000\r\n");
  EXPECT_EQ(r.status, 405);
}

TEST_F(StatsEndpoint, HeadIsGetWithoutBody) {
  auto r = request("HEAD", "/stats");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_TRUE(r.body.empty());
}

TEST_F(StatsEndpoint, HostMustNotBeAForeignName) {
  auto port = std::to_string(stats->local_address().port());
  auto with_host = [&](const std::string& h) {
    http_connection c{stats->local_address()};
    c.send("GET /stats HTTP/1.1\r\nHost: " + h + "\r\nConnection: close\r\n\r\n");
    return c.read_response();
  };
  EXPECT_EQ(with_host("evil.example:" + port).status, 403);
  EXPECT_EQ(with_host("evil.example").status, 403);
  EXPECT_EQ(with_host("localhost:" + port).status, 200);
  EXPECT_EQ(with_host("LOCALHOST").status, 200);
  EXPECT_EQ(with_host("127.0.0.1:" + port).status, 200);
  EXPECT_EQ(with_host("[::1]:" + port).status, 200);
  // HTTP/1.0 without Host.
  http_connection c{stats->local_address()};
  c.send("GET /stats HTTP/1.0\r\n\r\n");
  EXPECT_EQ(c.read_response().status, 200);
}

TEST_F(StatsEndpoint, KeepAliveServesSeveralRequests) {
  http_connection c{stats->local_address()};
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(c.send("GET /stats HTTP/1.1\r\nHost: " + host() + "\r\n\r\n"));
    auto r = c.read_response();
    ASSERT_EQ(r.status, 200) << "request " << i;
    EXPECT_FALSE(json::parse(r.body, nullptr, false).is_discarded());
  }
  // Pipelined: two requests in one write.
  std::string two = "GET /metrics HTTP/1.1\r\nHost: " + host()
                    + "\r\n\r\nGET /nope HTTP/1.1\r\nHost: " + host()
                    + "\r\nConnection: close\r\n\r\n";
  ASSERT_TRUE(c.send(two));
  EXPECT_EQ(c.read_response().status, 200);
  EXPECT_EQ(c.read_response().status, 404);
  EXPECT_TRUE(c.closed_by_peer());
}

// -- hostile clients --------------------------------------------------------------

TEST_F(StatsEndpoint, GarbageGets400OrAClosedConnection) {
  const std::string cases[] = {
    std::string{"\x16\x03\x01\x02\x00garbage\r\n\r\n", 16},
    "BREW /stats HTTP/1.1\r\n\r\n",
    "GET /stats HTTP/9.9\r\n\r\n",
    "GET\r\n\r\n",
    "GET /stats HTTP/1.1\r\nno colon here\r\n\r\n",
    "\r\n\r\n\r\n",
    std::string(3000, '\0'),
  };
  for (auto& bytes : cases) {
    http_connection c{stats->local_address()};
    ASSERT_TRUE(c.connected());
    c.send(bytes);
    c.shutdown_write();
    auto r = c.read_response();
    // 505: libmicrohttpd refuses HTTP/2+ on an HTTP/1 port itself.
    EXPECT_TRUE(r.status == 0 || r.status == 400 || r.status == 200
                || r.status == 505)
      << r.status << " for " << json(bytes).dump(-1, ' ', true,
                                                 json::error_handler_t::replace);
    // Requests that do not parse are answered by libmicrohttpd itself, with
    // its short HTML body; those that reach the endpoint get JSON.
    if (r.status == 400 && r.header("content-type") == "application/json") {
      EXPECT_EQ(json::parse(r.body, nullptr, false)["error"], "bad request");
    }
  }
  // Random bytes, no line end at all.
  std::string noise(8192, '\0');
  uint32_t x = 12345;
  for (auto& ch : noise) {
    x = x * 1103515245u + 12345u;
    ch = static_cast<char>(x >> 24);
  }
  {
    http_connection c{stats->local_address()};
    c.send(noise);
    c.shutdown_write();
    auto r = c.read_response();
    EXPECT_TRUE(r.status == 0 || r.status == 400) << r.status;
  }
  EXPECT_EQ(get("/stats").status, 200);
}

TEST_F(StatsEndpoint, BadRequestEndsTheConnection) {
  // The rest of a request that did not parse is not taken for more
  // requests: one 400, then the connection closes.
  http_connection c{stats->local_address()};
  ASSERT_TRUE(c.send("BREW /stats HTTP/1.1\r\nHost: " + host()
                     + "\r\nX-A: b\r\n\r\nGET /stats HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(c.read_response().status, 400);
  EXPECT_TRUE(c.closed_by_peer());
  EXPECT_EQ(stats_json()["net"][stats->name()]["responses"]["400"], 1);
}

TEST_F(StatsEndpoint, OverlongRequestsAreRefused) {
  {
    // A request target beyond 8 KiB.
    auto r = get("/" + std::string(10000, 'a'));
    EXPECT_EQ(r.status, 414);
  }
  {
    // One 64 KiB header: beyond max_request_bytes (16 KiB).
    http_connection c{stats->local_address()};
    c.send("GET /stats HTTP/1.1\r\nHost: " + host() + "\r\nX-Long: "
           + std::string(65536, 'a') + "\r\n\r\n");
    auto r = c.read_response();
    EXPECT_EQ(r.status, 400);
  }
  {
    // Endless headers: the budget stops them; the client may see a 400 or
    // a reset while it is still sending.
    http_connection c{stats->local_address(), 2000};
    std::string req = "GET /stats HTTP/1.1\r\nHost: " + host() + "\r\n";
    bool sent = c.send(req);
    for (int i = 0; i < 3000 && sent; ++i)
      sent = c.send("X-H" + std::to_string(i) + ": " + std::string(100, 'b')
                    + "\r\n");
    auto r = c.read_response();
    EXPECT_TRUE(r.status == 0 || r.status == 400) << r.status;
  }
  EXPECT_EQ(get("/stats").status, 200);
  auto mine = stats_json()["net"][stats->name()];
  EXPECT_GE(mine["oversize"].get<int64_t>(), 1);
}

TEST_F(StatsEndpoint, SlowClientDoesNotStallOthers) {
  // Half a request, then silence: it waits until its deadline, holding no
  // thread (one event loop serves all), and the others keep answering.
  http_connection slow{stats->local_address(), 10000};
  ASSERT_TRUE(slow.connected());
  ASSERT_TRUE(slow.send("GET /stats HTTP/1.1\r\nHost: 127.0"));
  // connects, sends nothing
  http_connection slower{stats->local_address(), 10000};
  ASSERT_TRUE(slower.connected());
  for (int i = 0; i < 10; ++i) {
    auto r = get(i % 2 ? "/stats" : "/metrics");
    ASSERT_EQ(r.status, 200) << "request " << i;
  }
  echo(3);
  EXPECT_EQ(get("/stats").status, 200);
}

TEST_F(StatsEndpoint, StalledHalfRequestIsCutAtItsDeadline) {
  stats_endpoint_limits lim;
  lim.request_timeout_ms = 300; // short, so the test does not wait long
  auto ep = stats_endpoint::open(*rt, *udp_address::parse("127.0.0.1:0"), lim);
  ASSERT_TRUE(ep) << ep.error().message();
  http_connection slow{(*ep)->local_address(), 10000};
  ASSERT_TRUE(slow.send("GET /stats HTTP/1.1\r\nHost: 127.0"));
  // The server answers 400 (incomplete request) or closes; either way the
  // connection ends well before the client's own 10 s timeout would.
  auto r = slow.read_response();
  EXPECT_TRUE(r.status == 0 || r.status == 400) << r.status;
  EXPECT_GE((*ep)->stats()["timeouts"].get<int64_t>(), 1);
}

// (A connection beyond max_connections gets 503: stats_denial_test.cpp,
// MoreConnectionsThanTheLimitGet503. A half request no longer holds a pool
// thread, so "more clients than threads" is no longer a refusal.)

TEST_F(StatsEndpoint, ManyConnectionsAtOnceAllEnd) {
  // More connections than threads plus queue, all sending a request: each
  // gets 200 or 503, none hangs, and the endpoint serves afterwards.
  std::vector<std::unique_ptr<http_connection>> clients;
  for (int i = 0; i < 40; ++i) {
    clients.push_back(
      std::make_unique<http_connection>(stats->local_address()));
    clients.back()->send("GET /stats HTTP/1.1\r\nHost: " + host()
                         + "\r\nConnection: close\r\n\r\n");
  }
  int ok = 0;
  for (auto& c : clients) {
    auto status = c->read_response().status;
    EXPECT_TRUE(status == 200 || status == 503 || status == 0) << status;
    ok += status == 200;
  }
  EXPECT_GE(ok, 1);
  EXPECT_EQ(get("/stats").status, 200);
}

// -- lifetime -----------------------------------------------------------------------

TEST_F(StatsEndpoint, CloseIsIdempotentAndStopsServing) {
  auto addr = stats->local_address();
  http_connection idle{addr}; // an open connection does not hold up close()
  ASSERT_TRUE(idle.connected());
  stats->close();
  stats->close();
  stats->stop_receiving();
  http_connection c{addr};
  EXPECT_FALSE(c.connected());
  EXPECT_EQ(c.connect_errno(), ECONNREFUSED);
  EXPECT_TRUE(idle.closed_by_peer());
  // Still in the document (the runtime owns it), counting no more.
  EXPECT_TRUE(rt->collect_stats()["net"].contains(stats->name()));
}

TEST_F(StatsEndpoint, KeepsServingWhileTheRuntimeDrains) {
  stats->stop_receiving(); // what runtime::stop() calls first
  EXPECT_EQ(get("/stats").status, 200);
}

TEST_F(StatsEndpoint, StopClosesEverythingAndBalances) {
  echo(10);
  ASSERT_EQ(get("/stats").status, 200);
  auto addr = stats->local_address();
  rt->stop();
  EXPECT_TRUE(rt->balance().zero()) << rt->balance().to_json().dump();
  http_connection c{addr};
  EXPECT_FALSE(c.connected());
}

TEST_F(StatsEndpoint, OpenOnAStoppedRuntimeClosesAtOnce) {
  // attach() closes an endpoint that arrives after stop(), possibly before
  // its event thread has started: no hang.
  rt->stop();
  for (int i = 0; i < 20; ++i) {
    auto ep = stats_endpoint::open(*rt, *udp_address::parse("127.0.0.1:0"));
    ASSERT_TRUE(ep) << ep.error().message();
    http_connection c{(*ep)->local_address()};
    EXPECT_FALSE(c.connected());
  }
}

TEST_F(StatsEndpoint, ServesWhileStatsAreReadConcurrently) {
  // Several clients at once while traffic flows: no crash, no race (ASan,
  // TSan builds), every response valid.
  std::atomic<int> bad{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&, t] {
      for (int i = 0; i < 15; ++i) {
        auto r = get(t == 0 ? "/metrics" : "/stats");
        if (r.status != 200 && r.status != 503)
          ++bad;
      }
    });
  }
  echo(50);
  for (auto& r : readers)
    r.join();
  EXPECT_EQ(bad.load(), 0);
}

// -- opening --------------------------------------------------------------------------

TEST_F(StatsEndpoint, OpenRejectsBadArguments) {
  stats_endpoint_limits lim;
  lim.threads = 0;
  auto r = stats_endpoint::open(*rt, *udp_address::parse("127.0.0.1:0"), lim);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::invalid_config);
  EXPECT_EQ(r.error().subject, "stats.threads");
  lim = {};
  lim.max_request_bytes = 10;
  r = stats_endpoint::open(*rt, *udp_address::parse("127.0.0.1:0"), lim);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().subject, "stats.max_request_bytes");
  auto unspec = stats_endpoint::open(*rt, udp_address{});
  ASSERT_FALSE(unspec);
  EXPECT_EQ(unspec.error().code, errc::invalid_address);
}

TEST_F(StatsEndpoint, PortInUseFails) {
  // No SO_REUSEPORT: a second endpoint cannot share the port.
  auto r = stats_endpoint::open(*rt, stats->local_address());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::system_error);
  EXPECT_EQ(r.error().sys_errno, EADDRINUSE);
}

TEST_F(StatsEndpoint, ServesOverIpv6Loopback) {
  auto ep = stats_endpoint::open(*rt, *udp_address::parse("[::1]:0"));
  ASSERT_TRUE(ep) << ep.error().message();
  EXPECT_TRUE((*ep)->local_address().is_v6());
  EXPECT_EQ((*ep)->name().rfind("http:[::1]:", 0), 0u);
  auto r = request_to(**ep, "GET", "/stats");
  EXPECT_EQ(r.status, 200);
}

} // namespace
