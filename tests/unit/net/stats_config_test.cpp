// parse_stats_config (net/stats_endpoint.hpp): the "stats" section.

#include <gtest/gtest.h>

#include <mayfly/net/stats_endpoint.hpp>

namespace {

using mayfly::parse_stats_config;
using nlohmann::json;

std::string error_of(const json& doc) {
  auto cfg = parse_stats_config(doc);
  EXPECT_FALSE(cfg) << doc.dump();
  return cfg ? std::string{} : cfg.error().message();
}

TEST(StatsConfig, AbsentSectionMeansNoEndpointAndDefaultLimits) {
  auto cfg = parse_stats_config(json::object());
  ASSERT_TRUE(cfg) << cfg.error().message();
  EXPECT_FALSE(cfg->address.has_value());
  mayfly::stats_endpoint_limits defaults;
  EXPECT_EQ(cfg->limits.threads, defaults.threads);
  EXPECT_EQ(cfg->limits.max_request_bytes, defaults.max_request_bytes);
}

TEST(StatsConfig, ReadsEveryField) {
  auto cfg = parse_stats_config(json::parse(R"({"stats": {
    "address": "[::1]:9100", "threads": 2, "max_queued": 4,
    "request_timeout_ms": 700, "keep_alive_timeout_ms": 300,
    "keep_alive_max": 9, "max_request_bytes": 4096, "max_connections": 32,
    "allowed_hosts": ["stats.example", "Mon.Lan."] }})"));
  ASSERT_TRUE(cfg) << cfg.error().message();
  ASSERT_TRUE(cfg->address.has_value());
  EXPECT_EQ(cfg->address->to_string(), "[::1]:9100");
  EXPECT_EQ(cfg->limits.threads, 2u);
  EXPECT_EQ(cfg->limits.max_queued, 4u);
  EXPECT_EQ(cfg->limits.request_timeout_ms, 700u);
  EXPECT_EQ(cfg->limits.keep_alive_timeout_ms, 300u);
  EXPECT_EQ(cfg->limits.keep_alive_max, 9u);
  EXPECT_EQ(cfg->limits.max_request_bytes, 4096u);
  EXPECT_EQ(cfg->limits.max_connections, 32u);
  EXPECT_EQ(cfg->limits.allowed_hosts,
            (std::vector<std::string>{"stats.example", "Mon.Lan."}));
}

TEST(StatsConfig, ErrorsNameTheField) {
  EXPECT_EQ(error_of({{"stats", {{"threads", 0}}}}),
            "stats.threads: value out of range");
  EXPECT_EQ(error_of({{"stats", {{"max_request_bytes", 100}}}}),
            "stats.max_request_bytes: value out of range");
  EXPECT_EQ(error_of({{"stats", {{"adress", "127.0.0.1:1"}}}}),
            "stats.adress: unknown field");
  EXPECT_NE(error_of({{"stats", {{"address", "not an address"}}}})
              .find("stats.address"),
            std::string::npos);
  EXPECT_NE(error_of({{"stats", {{"threads", "four"}}}}).find("stats.threads"),
            std::string::npos);
  EXPECT_NE(error_of({{"stats", 1}}).find("stats"), std::string::npos);
  EXPECT_EQ(error_of({{"stats", {{"max_connections", 0}}}}),
            "stats.max_connections: value out of range");
  EXPECT_EQ(error_of({{"stats", {{"allowed_hosts", "stats.example"}}}}),
            "stats.allowed_hosts: expected an array of host names");
  EXPECT_EQ(error_of({{"stats", {{"allowed_hosts", json::array({"a b"})}}}}),
            "stats.allowed_hosts: not a host name");
}

} // namespace
