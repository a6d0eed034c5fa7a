// net/internal/source_limiter.hpp: the per-source token buckets of issue 16
// part 2. Time is passed in, so every case is exact: rate, burst, refill,
// prefix masking (IPv4, IPv6, IPv4-mapped), the fixed bound of the table,
// the eviction rule, and that a flooder gains nothing from being evicted.

#include <mayfly/net/internal/source_limiter.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace {

using namespace mayfly;
using detail::source_limiter;

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSecond = 1000 * kMs;
constexpr int64_t kStart = 1000 * kSecond; // any steady-clock time

udp_address addr(const std::string& text) {
  auto a = udp_address::parse(text, 53);
  EXPECT_TRUE(a) << text;
  return a ? *a : udp_address{};
}

source_limit_options limit(uint32_t rate, uint32_t burst,
                           uint32_t table_size = 64) {
  source_limit_options o;
  o.rate = rate;
  o.burst = burst;
  o.table_size = table_size;
  return o;
}

// How many of `n` datagrams sent at once at `now` are admitted.
int admitted_of(source_limiter& l, const udp_address& a, int n, int64_t now) {
  int ok = 0;
  for (int i = 0; i < n; ++i)
    ok += l.admit(a, now).admitted;
  return ok;
}

// `count` IPv4 sources 10.x.y.z that fall in set `set` of `l`.
std::vector<udp_address> sources_in_set(const source_limiter& l, size_t set,
                                        size_t count, int skip = 0) {
  std::vector<udp_address> out;
  for (int i = 0; out.size() < count && i < 1 << 20; ++i) {
    auto a = addr("10." + std::to_string((i >> 16) & 255) + "."
                  + std::to_string((i >> 8) & 255) + "."
                  + std::to_string(i & 255));
    if (l.set_of(a) == set && skip-- <= 0)
      out.push_back(a);
  }
  EXPECT_EQ(out.size(), count);
  return out;
}

TEST(SourceLimiter, AQuietSourceMaySendItsBurstAtOnce) {
  source_limiter l{limit(100, 10), 1};
  auto a = addr("192.0.2.1");
  EXPECT_EQ(admitted_of(l, a, 50, kStart), 10);
  // A refusal costs nothing: one interval later exactly one more passes.
  EXPECT_EQ(admitted_of(l, a, 50, kStart + 10 * kMs), 1);
}

TEST(SourceLimiter, AFloodIsHeldToRateTimesTimePlusBurst) {
  // 100/s with a burst of 10; the source sends every millisecond for 2 s.
  source_limiter l{limit(100, 10), 1};
  auto a = addr("192.0.2.1");
  int ok = 0;
  for (int64_t t = 0; t <= 2000; ++t)
    ok += l.admit(a, kStart + t * kMs).admitted;
  EXPECT_EQ(ok, 10 + 200); // burst + rate * 2 s
}

TEST(SourceLimiter, ASourceAtItsRateIsNeverRefused) {
  source_limiter l{limit(100, 1), 1};
  auto a = addr("192.0.2.1");
  for (int64_t i = 0; i < 1000; ++i)
    ASSERT_TRUE(l.admit(a, kStart + i * 10 * kMs).admitted) << i;
}

TEST(SourceLimiter, TheBucketRefillsToItsBurstAndNoMore) {
  source_limiter l{limit(1000, 5), 1};
  auto a = addr("192.0.2.1");
  EXPECT_EQ(admitted_of(l, a, 20, kStart), 5);
  EXPECT_EQ(admitted_of(l, a, 20, kStart + 2 * kMs), 2); // 2 ms: 2 tokens
  EXPECT_EQ(admitted_of(l, a, 20, kStart + 10 * kSecond), 5);
}

TEST(SourceLimiter, DefaultBurstIsATenthOfTheRateAtLeastTen) {
  EXPECT_EQ(source_limit_options::default_burst(5), 10u);
  EXPECT_EQ(source_limit_options::default_burst(1000), 100u);
  source_limiter l{limit(1000, 0), 1};
  EXPECT_EQ(admitted_of(l, addr("192.0.2.1"), 500, kStart), 100);
}

TEST(SourceLimiter, SourcesHaveBucketsOfTheirOwn) {
  source_limiter l{limit(100, 3), 1};
  EXPECT_EQ(admitted_of(l, addr("192.0.2.1"), 10, kStart), 3);
  EXPECT_EQ(admitted_of(l, addr("192.0.2.2"), 10, kStart), 3);
}

TEST(SourceLimiter, ThePortIsNotPartOfTheKey) {
  source_limiter l{limit(100, 3), 1};
  EXPECT_EQ(admitted_of(l, addr("192.0.2.1:1000"), 2, kStart), 2);
  EXPECT_EQ(admitted_of(l, addr("192.0.2.1:2000"), 10, kStart), 1);
}

TEST(SourceLimiter, Ipv4SourcesShareABucketWithinTheirPrefix) {
  auto o = limit(100, 3);
  o.ipv4_prefix = 24;
  source_limiter l{o, 1};
  EXPECT_EQ(admitted_of(l, addr("10.1.2.3"), 2, kStart), 2);
  EXPECT_EQ(admitted_of(l, addr("10.1.2.200"), 10, kStart), 1);
  EXPECT_EQ(admitted_of(l, addr("10.1.3.3"), 10, kStart), 3);
  // /32 by default: every address its own.
  source_limiter full{limit(100, 3), 1};
  EXPECT_EQ(admitted_of(full, addr("10.1.2.3"), 10, kStart), 3);
  EXPECT_EQ(admitted_of(full, addr("10.1.2.4"), 10, kStart), 3);
}

TEST(SourceLimiter, Ipv6SourcesShareABucketWithinTheirPrefix) {
  source_limiter l{limit(100, 3), 1}; // /64 by default
  EXPECT_EQ(admitted_of(l, addr("[2001:db8::1]:53"), 2, kStart), 2);
  EXPECT_EQ(admitted_of(l, addr("[2001:db8::ffff:1]:53"), 10, kStart), 1);
  EXPECT_EQ(admitted_of(l, addr("[2001:db8:0:1::1]:53"), 10, kStart), 3);
  auto o = limit(100, 3);
  o.ipv6_prefix = 120; // a mask that ends inside the low word
  source_limiter fine{o, 1};
  EXPECT_EQ(admitted_of(fine, addr("[2001:db8::101]:53"), 2, kStart), 2);
  EXPECT_EQ(admitted_of(fine, addr("[2001:db8::1ff]:53"), 10, kStart), 1);
  EXPECT_EQ(admitted_of(fine, addr("[2001:db8::201]:53"), 10, kStart), 3);
  o.ipv6_prefix = 0; // one bucket for all of IPv6
  source_limiter all{o, 1};
  EXPECT_EQ(admitted_of(all, addr("[2001:db8::1]:53"), 2, kStart), 2);
  EXPECT_EQ(admitted_of(all, addr("[fe80::1]:53"), 10, kStart), 1);
}

TEST(SourceLimiter, AnIpv4MappedSourceIsIpv4) {
  auto o = limit(100, 3);
  o.ipv4_prefix = 24;
  source_limiter l{o, 1};
  EXPECT_EQ(admitted_of(l, addr("10.1.2.3"), 2, kStart), 2);
  EXPECT_EQ(admitted_of(l, addr("[::ffff:10.1.2.99]:53"), 10, kStart), 1);
}

TEST(SourceLimiter, TheTableIsBoundedWhateverTheNumberOfSources) {
  source_limiter l{limit(10, 2, 100), 1};
  ASSERT_EQ(l.capacity(), 128u); // rounded up to a power of two
  auto source = [](int i) {
    return addr("10." + std::to_string(i >> 16) + "."
                + std::to_string((i >> 8) & 255) + "."
                + std::to_string(i & 255));
  };
  // 65,536 sources, one datagram each, 2 ms apart: 500 new sources a
  // second, well within what 128 buckets at 10/s hold (1,280 a second).
  // Every one is admitted, evicting as it goes.
  int ok = 0;
  int64_t evictions = 0;
  for (int i = 0; i < 65536; ++i) {
    auto d = l.admit(source(i), kStart + i * 2 * kMs);
    ok += d.admitted;
    evictions += d.evicted;
  }
  EXPECT_EQ(ok, 65536);
  EXPECT_GT(evictions, 0);
  // 65,536 more within 65 ms, far beyond that: newly seen sources share
  // their set's budget, so all of them together get no more than the
  // table's worth, burst + rate * span per bucket.
  auto t0 = kStart + 200 * kSecond;
  ok = 0;
  for (int i = 0; i < 65536; ++i)
    ok += l.admit(source(65536 + i), t0 + i * 1000).admitted;
  auto span_s = 65536.0 * 1000 / kSecond;
  EXPECT_LE(ok, 128 * (2 + 10 * span_s) + 1);
  EXPECT_EQ(l.capacity(), 128u);
}

TEST(SourceLimiter, AFullBucketIsFreeForANewSource) {
  source_limiter l{limit(100, 2), 7};
  auto set = sources_in_set(l, 3, source_limiter::ways + 1);
  for (size_t i = 0; i < source_limiter::ways; ++i)
    ASSERT_FALSE(l.admit(set[i], kStart).evicted);
  // Every bucket of the set is in use and refilling: a new source evicts.
  EXPECT_TRUE(l.admit(set.back(), kStart).evicted);
  // 1 s later every bucket is full again: a new source takes one freely.
  auto later = sources_in_set(l, 3, 1, static_cast<int>(set.size()));
  EXPECT_FALSE(l.admit(later[0], kStart + kSecond).evicted);
}

TEST(SourceLimiter, ANewSourceTakesTheLeastDebtAndInheritsIt) {
  // 10/s, burst 4: source i sends i+1 datagrams (debt i+1 intervals), so
  // source 0 has the least debt.
  source_limiter l{limit(10, 4), 7};
  auto set = sources_in_set(l, 5, source_limiter::ways + 2);
  for (size_t i = 0; i < source_limiter::ways; ++i)
    admitted_of(l, set[i], static_cast<int>(std::min<size_t>(i + 1, 4)),
                kStart);
  // The newcomer takes source 0's slot with its debt of one datagram: of a
  // burst it gets 3, not 4.
  auto& newcomer = set[source_limiter::ways];
  auto first = l.admit(newcomer, kStart);
  EXPECT_TRUE(first.evicted);
  EXPECT_TRUE(first.admitted);
  EXPECT_EQ(admitted_of(l, newcomer, 10, kStart), 2);
  // The sources with more debt kept their buckets: source 7 (4 sent) is
  // still refused.
  EXPECT_FALSE(l.admit(set[source_limiter::ways - 1], kStart).admitted);
}

TEST(SourceLimiter, AFlooderGainsNothingFromBeingEvicted) {
  // A flooder sends every millisecond for 3 s while other sources in its
  // set come and go, each sending a burst, so that buckets are evicted
  // again and again (the flooder's among them). Whatever the churn, the
  // flooder is admitted no more often than it is alone.
  auto o = limit(50, 5, 64);
  source_limiter alone{o, 7};
  source_limiter churned{o, 7};
  auto flooder = addr("192.0.2.66");
  auto set = churned.set_of(flooder);
  auto others = sources_in_set(churned, set, 400);
  int alone_ok = 0;
  int churned_ok = 0;
  int64_t evictions = 0;
  size_t next = 0;
  for (int64_t t = 0; t < 3000; ++t) {
    auto now = kStart + t * kMs;
    alone_ok += alone.admit(flooder, now).admitted;
    churned_ok += churned.admit(flooder, now).admitted;
    ASSERT_LE(churned_ok, alone_ok) << "at " << t << " ms";
    // A new source every other millisecond, sending a burst.
    if (t % 2 == 0) {
      auto& other = others[next++ % others.size()];
      for (int i = 0; i < 6; ++i)
        evictions += churned.admit(other, now).evicted;
    }
  }
  EXPECT_GT(evictions, 100); // the churn did evict
  EXPECT_GT(churned_ok, 0);
}

TEST(SourceLimiter, ASourceIsLimitedFromARefusalUntilItsBucketRefills) {
  source_limiter l{limit(100, 2), 1};
  auto a = addr("192.0.2.1");
  auto b = addr("192.0.2.2");
  EXPECT_EQ(l.limited(kStart), 0);
  EXPECT_EQ(admitted_of(l, a, 5, kStart), 2);
  EXPECT_EQ(admitted_of(l, b, 1, kStart), 1);
  EXPECT_EQ(l.limited(kStart), 1); // a, not b
  // Its bucket full again (2 intervals), it no longer counts.
  EXPECT_EQ(l.limited(kStart + 19 * kMs), 1);
  EXPECT_EQ(l.limited(kStart + 20 * kMs), 0);
  // An admission ends it too.
  EXPECT_EQ(admitted_of(l, a, 5, kStart + 20 * kMs), 2);
  EXPECT_EQ(l.limited(kStart + 20 * kMs), 1);
  EXPECT_TRUE(l.admit(a, kStart + 30 * kMs).admitted);
  EXPECT_EQ(l.limited(kStart + 30 * kMs), 0);
}

TEST(SourceLimiter, OptionsOutOfRangeSayWhich) {
  source_limit_options o;
  EXPECT_EQ(o.check(), "");
  o.ipv4_prefix = 33;
  EXPECT_EQ(o.check(), "ipv4_prefix: 33 is not in 0..32");
  o = {};
  o.ipv6_prefix = 129;
  EXPECT_EQ(o.check(), "ipv6_prefix: 129 is not in 0..128");
  o = {};
  o.rate = 10'000'001;
  EXPECT_EQ(o.check(), "rate: 10000001 is not in 0..10000000");
  o = {};
  o.table_size = 4;
  EXPECT_EQ(o.check(), "table_size: 4 is not in 8..16777216");
}

} // namespace
