// net/serve.hpp: the common flags of a service. Every bad value is an error
// whose message names the flag and the value (issue 18 item 5); good values
// land in the options.

#include <mayfly/net/serve.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <mayfly/net/config.hpp>
#include <mayfly/net/udp_endpoint.hpp>
#include "tests/support/small_runtime.hpp"

namespace {

using args = std::vector<std::string>;

// The error message for `a`, or "ok".
std::string outcome(const args& a, std::vector<mayfly::serve_flag> extra = {}) {
  auto opts = mayfly::read_serve_options(a, 9000, extra);
  return opts ? std::string{"ok"} : opts.error().message();
}

TEST(Serve, GoodFlagsLandInTheOptions) {
  std::string mode;
  auto opts = mayfly::read_serve_options(
    {"--port", "5300", "--address=::1", "--workers", "3", "--receive-threads",
     "2", "--exit-after", "7", "--stats", "127.0.0.1:9100", "--mode", "b"},
    9000, {{"mode", "a or b", &mode, mayfly::expect_one_of({"a", "b"})}});
  ASSERT_TRUE(opts) << opts.error().message();
  EXPECT_EQ(opts->config.net.address.to_string(), "[::1]:5300");
  EXPECT_EQ(opts->config.runtime.workers, 3u);
  EXPECT_EQ(opts->config.net.receive_threads, 2u);
  EXPECT_EQ(opts->exit_after_s, 7u);
  ASSERT_TRUE(opts->config.stats.address.has_value());
  EXPECT_EQ(opts->config.stats.address->to_string(), "127.0.0.1:9100");
  EXPECT_EQ(mode, "b");
  EXPECT_FALSE(opts->help);
  auto defaults = mayfly::read_serve_options({}, 9000);
  ASSERT_TRUE(defaults);
  EXPECT_EQ(defaults->config.net.address.to_string(), "127.0.0.1:9000");
  EXPECT_GE(defaults->config.runtime.workers, 1u);
  EXPECT_LE(defaults->config.runtime.workers, mayfly::default_max_workers); // small
  auto help = mayfly::read_serve_options({"--port", "1", "--help"}, 9000);
  ASSERT_TRUE(help);
  EXPECT_TRUE(help->help);
}

TEST(Serve, EveryBadValueIsAnErrorNamingIt) {
  struct bad_case {
    args given;
    std::string message;
  };
  const bad_case cases[] = {
    {{"--port", "99999"}, "--port: '99999' is not a port number (0..65535)"},
    {{"--port", "65536"}, "--port: '65536' is not a port number (0..65535)"},
    {{"--port", "abc"}, "--port: 'abc' is not a port number (0..65535)"},
    {{"--port=-1"}, "--port: '-1' is not a port number (0..65535)"},
    {{"--workers", "12abc"},
     "--workers: '12abc' is not a whole number in 1..1024"},
    {{"--workers", "1e3"}, "--workers: '1e3' is not a whole number in 1..1024"},
    {{"--workers", "0"}, "--workers: '0' is not a whole number in 1..1024"},
    {{"--receive-threads", "-1"},
     "--receive-threads: '-1' is not a whole number in 1..64"},
    {{"--exit-after", "1.5"},
     "--exit-after: '1.5' is not a whole number in 0..31536000"},
    {{"--address", "localhost"},
     "--address: 'localhost' is not a numeric IPv4 or IPv6 address"},
    {{"--stats", "abc"},
     "--stats: 'abc' is not ADDRESS:PORT (a numeric IPv4 or [IPv6] address, "
     "a port 0..65535)"},
    {{"--stats", "127.0.0.1:99999"},
     "--stats: '127.0.0.1:99999' is not ADDRESS:PORT (a numeric IPv4 or "
     "[IPv6] address, a port 0..65535)"},
    {{"--config", ""}, "--config: '' is not a file name"},
    {{"--config", "/tmp"},
     "/tmp: cannot read configuration file: Is a directory"},
    {{"--source-rate", "-5"},
     "--source-rate: '-5' is not a whole number in 0..10000000"},
    {{"--source-rate", "1e3"},
     "--source-rate: '1e3' is not a whole number in 0..10000000"},
    {{"--source-rate", "10000001"},
     "--source-rate: '10000001' is not a whole number in 0..10000000"},
    {{"--source-rate", ""},
     "--source-rate: '' is not a whole number in 0..10000000"},
    {{"--source-burst", "many"},
     "--source-burst: 'many' is not a whole number in 0..1000000000"},
    {{"--source-rate"}, "--source-rate: needs a value"},
    {{"--bogus", "1"}, "'--bogus': unknown flag"},
    {{"--port"}, "--port: needs a value"},
  };
  for (auto& c : cases)
    EXPECT_EQ(outcome(c.given), c.message) << c.given.front();
}

TEST(Serve, ServiceFlagsAreChecked) {
  std::string n, port, pin;
  std::vector<mayfly::serve_flag> extra = {
    {"n", "a number", &n, mayfly::expect_uint(1, 10)},
    {"publish", "a port", &port, mayfly::expect_port()},
    {"pin", "0 or 1", &pin, mayfly::expect_one_of({"0", "1"})},
  };
  EXPECT_EQ(outcome({"--n", "11"}, extra),
            "--n: '11' is not a whole number in 1..10");
  EXPECT_EQ(outcome({"--publish", "99999"}, extra),
            "--publish: '99999' is not a port number (0..65535)");
  EXPECT_EQ(outcome({"--pin", "abc"}, extra),
            "--pin: 'abc' is not '0' or '1'");
  EXPECT_EQ(outcome({"--n", "3", "--publish=0", "--pin", "1"}, extra), "ok");
  EXPECT_EQ(n, "3");
  EXPECT_EQ(port, "0");
  EXPECT_EQ(pin, "1");
}

TEST(Serve, ConfigFileErrorsNameTheFileAndField) {
  auto path = std::string{::testing::TempDir()} + "mayfly_serve_test.json";
  {
    std::ofstream out{path};
    out << R"({ "runtime": { "workers": 100000 } })";
  }
  EXPECT_EQ(outcome({"--config", path}),
            path + ": runtime.workers: value out of range");
  {
    std::ofstream out{path};
    out << R"({ "runtime": { "workers": 2 }, "runtime": {} })";
  }
  EXPECT_EQ(outcome({"--config", path}),
            path + ": runtime: key given twice in the configuration file");
  {
    std::ofstream out{path};
    out << R"({ "runtime": { "workers": 2 }, "net": { "receive_threads": 2 } })";
  }
  auto opts = mayfly::read_serve_options({"--config", path, "--workers", "5"},
                                         9000);
  ASSERT_TRUE(opts) << opts.error().message();
  EXPECT_EQ(opts->config.runtime.workers, 5u); // the flag wins over the file
  EXPECT_EQ(opts->config.net.receive_threads, 2u);
  std::remove(path.c_str());
}

// Issue 16 part 2: --source-rate and --source-burst, and the file's
// "net.source_limit", land in the options; the flags win over the file.
TEST(Serve, SourceLimitFromFlagsAndFile) {
  auto none = mayfly::read_serve_options({}, 9000);
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->config.source_limit.has_value()); // off unless asked for
  auto flags = mayfly::read_serve_options(
    {"--source-rate", "500", "--source-burst=40"}, 9000);
  ASSERT_TRUE(flags) << flags.error().message();
  ASSERT_TRUE(flags->config.source_limit.has_value());
  EXPECT_EQ(flags->config.source_limit->rate, 500u);
  EXPECT_EQ(flags->config.source_limit->burst, 40u);
  EXPECT_EQ(flags->config.source_limit->ipv4_prefix, 32);
  EXPECT_EQ(flags->config.source_limit->ipv6_prefix, 64);
  auto path = std::string{::testing::TempDir()} + "mayfly_serve_limit.json";
  {
    std::ofstream out{path};
    out << R"({ "net": { "source_limit": { "rate": 50, "ipv4_prefix": 24,
                "ipv6_prefix": 56, "table_size": 1024 } } })";
  }
  auto both = mayfly::read_serve_options(
    {"--config", path, "--source-rate", "100"}, 9000);
  ASSERT_TRUE(both) << both.error().message();
  ASSERT_TRUE(both->config.source_limit.has_value());
  EXPECT_EQ(both->config.source_limit->rate, 100u); // the flag wins
  EXPECT_EQ(both->config.source_limit->burst, 0u);  // default: max(rate/10, 10)
  EXPECT_EQ(both->config.source_limit->ipv4_prefix, 24);
  EXPECT_EQ(both->config.source_limit->ipv6_prefix, 56);
  EXPECT_EQ(both->config.source_limit->table_size, 1024u);
  {
    std::ofstream out{path};
    out << R"({ "net": { "source_limit": { "ipv4_prefix": 33 } } })";
  }
  EXPECT_EQ(outcome({"--config", path}),
            path + ": net.source_limit.ipv4_prefix: value out of range");
  {
    std::ofstream out{path};
    out << R"({ "net": { "source_limit": { "rate": 5, "window": 1 } } })";
  }
  EXPECT_EQ(outcome({"--config", path}),
            path + ": net.source_limit.window: unknown field");
  std::remove(path.c_str());
}

// Issue 15: a port in use said "bind() failed", without the errno text or
// the address.
TEST(Serve, APortInUseSaysSoWithTheAddress) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  auto any = *mayfly::udp_address::parse("127.0.0.1:0");
  ASSERT_EQ(::bind(fd, any.sockaddr_ptr(), any.size()), 0);
  mayfly::udp_address taken;
  socklen_t len = mayfly::udp_address::capacity();
  ASSERT_EQ(::getsockname(fd, taken.sockaddr_ptr(), &len), 0);
  taken = mayfly::udp_address{taken.sockaddr_ptr(), len};
  auto made = mayfly::runtime::make(mayfly::test::small_runtime_config());
  ASSERT_TRUE(made) << made.error().message();
  auto& h = made->add_handler("noop", [](mayfly::handler_context&,
                                         const mayfly::datagram&) {});
  made->start();
  mayfly::endpoint_config ec;
  ec.address = taken;
  auto ep = mayfly::udp_endpoint::open(**made, h, ec);
  ASSERT_FALSE(ep);
  EXPECT_EQ(ep.error().message(),
            taken.to_string() + ": bind() failed: Address already in use");
  made->stop();
  ::close(fd);
}

} // namespace

namespace {

// Issue 15: serve's options carry the configuration tree once. A file read
// by `--config` lands in `serve_options::config` exactly as `load_config`
// reads it (every section, over the service's endpoint defaults), and the
// flags then override only the fields they name.
TEST(Serve, OptionsCarryTheConfigTreeLoadConfigReads) {
  auto path = std::string{::testing::TempDir()} + "mayfly_serve_tree.json";
  {
    std::ofstream out{path};
    out << R"({ "runtime": { "workers": 2 },
                "net": { "batch": 8, "receive_threads": 2 },
                "stats": { "address": "127.0.0.1:9111",
                           "max_connections": 7 } })";
  }
  mayfly::endpoint_config service_defaults;
  service_defaults.reply_queue = 1024; // the service's own, under the file
  mayfly::config defaults;
  defaults.net = service_defaults;
  auto loaded = mayfly::load_config(path, defaults);
  ASSERT_TRUE(loaded) << loaded.error().message();
  auto opts = mayfly::read_serve_options({"--config", path, "--port", "5301"},
                                         9000, {}, service_defaults);
  ASSERT_TRUE(opts) << opts.error().message();
  const auto& cfg = opts->config;
  EXPECT_EQ(cfg.runtime.workers, loaded->runtime.workers);
  EXPECT_EQ(cfg.net.batch, 8u);
  EXPECT_EQ(cfg.net.batch, loaded->net.batch);
  EXPECT_EQ(cfg.net.receive_threads, loaded->net.receive_threads);
  EXPECT_EQ(cfg.net.reply_queue, 1024u); // the default survives the file
  ASSERT_TRUE(cfg.stats.address.has_value());
  EXPECT_EQ(cfg.stats.address->to_string(), "127.0.0.1:9111");
  EXPECT_EQ(cfg.stats.limits.max_connections, 7u);
  EXPECT_EQ(cfg.stats.limits.max_connections,
            loaded->stats.limits.max_connections);
  // The flag overrides the address only; everything else is the file's.
  EXPECT_EQ(cfg.net.address.to_string(), "127.0.0.1:5301");
  auto flagged = mayfly::read_serve_options(
    {"--config", path, "--stats", "127.0.0.1:9112"}, 9000);
  ASSERT_TRUE(flagged) << flagged.error().message();
  EXPECT_EQ(flagged->config.stats.address->to_string(), "127.0.0.1:9112");
  EXPECT_EQ(flagged->config.stats.limits.max_connections, 7u);
  std::remove(path.c_str());
}

} // namespace
