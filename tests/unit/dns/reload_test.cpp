// Zone reload in dns::service (issue 18: SIGHUP killed mayfly-dns): a good
// zone file is swapped in for new queries while holders of the old zone
// keep it; a bad one leaves the served zone untouched, says why (naming the
// file) and is counted.

#include "examples/dns/service.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include "dns_test_util.hpp"

namespace {

using namespace dns;

std::string zone_text(int serial, const char* www) {
  return "$ORIGIN reload.test.\n$TTL 60\n@ SOA ns h " + std::to_string(serial)
         + " 2 3 4 5\n  NS ns\nns A 192.0.2.1\nwww A " + www + "\n";
}

void write_file(const std::string& path, const std::string& text) {
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr) << path;
  ASSERT_EQ(std::fwrite(text.data(), 1, text.size(), f), text.size());
  ASSERT_EQ(std::fclose(f), 0);
}

class DnsReload : public ::testing::Test {
protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "mayfly_dns_reload_"
            + std::to_string(::getpid()) + ".zone";
    write_file(path_, zone_text(1, "192.0.2.10"));
    auto z = load_zone_file(path_);
    ASSERT_TRUE(z.ok) << z.message;
    svc_ = std::make_unique<service>(std::move(z.value), path_);
  }

  void TearDown() override {
    ::unlink(path_.c_str());
    arena_.reset();
    EXPECT_EQ(pool_->blocks_in_use(), 0);
  }

  // The A records of www.reload.test as `z` answers them.
  std::vector<std::string> www(const zone& z) {
    arena_->reset();
    outcome out;
    auto reply = respond(z, test::make_query("www.reload.test", type::a),
                         *arena_, out);
    auto d = test::decode(reply);
    EXPECT_TRUE(d.ok) << d.error;
    std::vector<std::string> addrs;
    for (auto& r : d.in(section::answer))
      addrs.push_back(r.rdata);
    return addrs;
  }

  int64_t count(service_stats::counter c) const {
    return svc_->stats().count(c);
  }

  std::string path_;
  std::unique_ptr<service> svc_;
  std::unique_ptr<mayfly::arena_pool> pool_ = test::make_arena_pool();
  std::unique_ptr<mayfly::arena> arena_
    = std::make_unique<mayfly::arena>(*pool_);
};

TEST_F(DnsReload, GoodZoneIsSwappedInAndHoldersKeepTheOldOne) {
  auto before = svc_->current(); // as a handler in flight holds it
  EXPECT_EQ(serial_of(*before), 1u);
  write_file(path_, zone_text(2, "192.0.2.20"));
  auto r = svc_->reload();
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.message, "zone reload.test. reloaded from " + path_
                         + ": serial 2, 4 records");
  auto after = svc_->current();
  EXPECT_EQ(serial_of(*after), 2u);
  EXPECT_EQ(www(*after), (std::vector<std::string>{"192.0.2.20"}));
  // The old zone is still whole for whoever started with it.
  EXPECT_EQ(serial_of(*before), 1u);
  EXPECT_EQ(www(*before), (std::vector<std::string>{"192.0.2.10"}));
  EXPECT_EQ(count(service_stats::reloads), 1);
  EXPECT_EQ(count(service_stats::reload_failures), 0);
  auto j = svc_->to_json();
  EXPECT_EQ(j["zone"]["serial"], 2);
  EXPECT_EQ(j["zone"]["reloads"], 1);
  EXPECT_EQ(j["zone"]["last_reload_error"], "");
  // Only the service and `after` hold the new zone; `before` is the last
  // holder of the old one, which goes with it.
  EXPECT_EQ(before.use_count(), 1);
}

TEST_F(DnsReload, BadZoneKeepsTheOldOneAndSaysWhy) {
  struct bad_case {
    const char* what;
    std::string text; // empty: remove the file
    std::string expect;
  };
  const bad_case cases[] = {
    {"a syntax error", zone_text(3, "192.0.2.300"),
     path_ + ": line 6: bad IPv4 address '192.0.2.300'"},
    {"no SOA", "$ORIGIN reload.test.\nwww 60 A 192.0.2.1\n",
     path_ + ": no SOA record"},
    {"an empty file", "\n", path_ + ": no SOA record"},
    {"a missing file", "",
     path_ + ": cannot open the zone file: No such file or directory"},
  };
  int64_t failures = 0;
  for (auto& c : cases) {
    if (c.text.empty())
      ::unlink(path_.c_str());
    else
      write_file(path_, c.text);
    auto r = svc_->reload();
    EXPECT_FALSE(r.ok) << c.what;
    EXPECT_EQ(r.message,
              c.expect + "; still serving zone reload.test. serial 1")
      << c.what;
    ++failures;
    EXPECT_EQ(serial_of(*svc_->current()), 1u) << c.what;
    EXPECT_EQ(www(*svc_->current()), (std::vector<std::string>{"192.0.2.10"}))
      << c.what;
    EXPECT_EQ(count(service_stats::reload_failures), failures);
    EXPECT_EQ(svc_->to_json()["zone"]["last_reload_error"], r.message);
  }
  EXPECT_EQ(count(service_stats::reloads), 0);
  // A good file again: served, and the error is gone.
  write_file(path_, zone_text(4, "192.0.2.40"));
  auto r = svc_->reload();
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_EQ(serial_of(*svc_->current()), 4u);
  EXPECT_EQ(svc_->to_json()["zone"]["last_reload_error"], "");
  EXPECT_NE(svc_->stats().summary().find("zone reloads: 1, failed (old zone "
                                         "kept): 4"),
            std::string::npos)
    << svc_->stats().summary();
}

TEST_F(DnsReload, WithoutAFileReloadFailsAndKeepsTheZone) {
  auto z = parse_zone(zone_text(7, "192.0.2.70"));
  ASSERT_TRUE(z.ok);
  service fixed{std::move(z.value)};
  auto r = fixed.reload();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.message, "no zone file to reload from; still serving zone "
                       "reload.test. serial 7");
  EXPECT_EQ(serial_of(*fixed.current()), 7u);
  EXPECT_EQ(fixed.stats().count(service_stats::reload_failures), 1);
}

} // namespace
