// Bad input on the wire against mayfly-tally, run as a subprocess on
// ephemeral loopback ports (docs/workloads.md §2: every line that does
// not match NAME:VALUE|c exactly is counted as an error and skipped, the
// rest of the datagram is still processed; no reply to ingest; '?NAME' and
// '?*' are answered after everything received before them). Malformed
// lines and datagrams are mixed with valid ones; the totals and the error
// count that '?*' reports must be exact; at the end nothing is outstanding
// (/stats) and the program exits 0 after SIGTERM with its balance at zero.

#include <gtest/gtest.h>

#include <cinttypes>
#include <cstdio>
#include <map>
#include <fstream>
#include <string>
#include <thread>

#include "wire_support.hpp"

namespace {

using namespace wire;

class TallyWire : public ::testing::Test {
protected:
  void SetUp() override {
    config_ = write_config("tally", 65536);
    if (!detach_policy()) {
      // The same configuration with the runtime's detach policy off.
      std::ifstream in{config_};
      auto doc = json::parse(in);
      doc["runtime"]["detach"] = {{"enabled", false}};
      std::ofstream{config_} << doc.dump();
    }
    proc_ = std::make_unique<subprocess>(
      MAYFLY_TALLY_BIN,
      std::vector<std::string>{"--port", "0", "--stats", "127.0.0.1:0",
                               "--config", config_, "--aggregators", "2",
                               "--pin", pin(), "--max-keys", max_keys()});
    ASSERT_TRUE(proc_->started())
      << "stdout: " << proc_->out()
      << "\nstderr: " << proc_->err();
    client_ = std::make_unique<client>(proc_->udp(), 5000);
  }

  // Whether this test runs the deliberately pinning aggregator.
  virtual const char* pin() const {
    return "0";
  }

  // Whether the runtime's detach policy is on (the default).
  virtual bool detach_policy() const {
    return true;
  }

  // Names one aggregator may hold.
  virtual const char* max_keys() const {
    return "250000";
  }

  void TearDown() override {
    client_.reset();
    if (proc_ && proc_->started()) {
      if (std::string{pin()} == "0") {
        // The aggregators copy names into their own tables: no slice, no
        // binary, no dedicated copy is left once the traffic stopped.
        auto s = wait_quiet(proc_->stats());
        EXPECT_TRUE(quiet(s)) << s.dump();
      }
      expect_clean_stop(*proc_);
    }
    proc_.reset();
    std::remove(config_.c_str());
  }

  // An ingest datagram: `good` lines it holds are added to the expected
  // totals, `bad` malformed lines to the expected error count.
  void ingest(const std::string& bytes, int64_t bad,
              std::map<std::string, int64_t> good = {}) {
    ASSERT_TRUE(client_->send(bytes));
    errors_ += bad;
    for (auto& [name, value] : good)
      totals_[name] = static_cast<int64_t>(static_cast<uint64_t>(totals_[name])
                                           + static_cast<uint64_t>(value));
  }

  // A query; its reply (the server answers after all earlier ingest).
  std::string ask(const std::string& q) {
    EXPECT_TRUE(client_->send(q));
    auto r = client_->receive();
    EXPECT_TRUE(r) << "no reply to " << q;
    return r ? *r : std::string{};
  }

  std::string expected_summary() const {
    int64_t sum = 0;
    for (auto& [name, value] : totals_)
      sum = static_cast<int64_t>(static_cast<uint64_t>(sum)
                                 + static_cast<uint64_t>(value));
    return "keys:" + std::to_string(totals_.size())
           + " sum:" + std::to_string(sum)
           + " errors:" + std::to_string(errors_) + "\n";
  }

  // Checks '?*' and every name's total against what was sent.
  void check_totals() {
    EXPECT_EQ(ask("?*"), expected_summary());
    for (auto& [name, value] : totals_)
      EXPECT_EQ(ask("?" + name), name + ":" + std::to_string(value) + "\n");
  }

  std::string config_;
  std::unique_ptr<subprocess> proc_;
  std::unique_ptr<client> client_;
  std::map<std::string, int64_t> totals_;
  int64_t errors_ = 0;
};

TEST_F(TallyWire, MalformedLinesAreCountedAndTheRestIsProcessed) {
  ingest("w.a:1|c", 0, {{"w.a", 1}});
  // One malformed line per case, each followed by a valid line in the same
  // datagram that must still count.
  const char* bad_lines[] = {
    "no-colon|c",                      // no ':'
    "w.a:abc|c",                       // not a number
    "w.a:1|g",                         // another type
    "w.a:1",                           // no type
    "w.a:1|",                          // empty type
    ":1|c",                            // empty name
    "w a:1|c",                         // a space in the name
    "w/a:1|c",                         // a character outside the set
    "w.a: 1|c",                        // a space before the value
    "w.a:+1|c",                        // a '+' sign
    "w.a:1|c\r",                       // a '\r'
    "w.a:-|c",                         // a sign alone
    "w.a:|c",                          // no value
    "w.a:9223372036854775808|c",       // one past INT64_MAX
    "w.a:-9223372036854775809|c",      // one past INT64_MIN
    "w.a:1:2|c",                       // two colons
    "w.a:1|c|c",                       // two types
  };
  for (auto* bad : bad_lines)
    ingest(std::string{bad} + "\nw.b:2|c\n", 1, {{"w.b", 2}});
  // Names: 128 bytes is the longest valid one, 129 is malformed.
  std::string n128(128, 'n'), n129(129, 'n');
  ingest(n128 + ":5|c\n" + n129 + ":5|c", 1, {{n128, 5}});
  // Empty lines in the middle are malformed; the final '\n' is not a line.
  ingest("w.c:1|c\n\nw.c:1|c\n", 1, {{"w.c", 2}});
  ingest("\n", 1);   // one empty line
  ingest("\n\n", 2); // two empty lines
  // The empty datagram has no lines: nothing to count.
  ingest("", 0);
  ingest("x", 1); // one byte
  // Edges that are valid: leading zeros, the int64 extremes.
  ingest("w.z:007|c\nw.max:9223372036854775807|c\n"
         "w.min:-9223372036854775808|c",
         0,
         {{"w.z", 7},
          {"w.max", INT64_MAX},
          {"w.min", INT64_MIN}});
  ASSERT_TRUE(proc_->alive());
  check_totals();
}

TEST_F(TallyWire, RandomBytesAndHugeDatagramsAmongValidOnes) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    // Random bytes as one line: no '\n', not a query: exactly one error.
    auto junk = random_bytes(1 + seed * 71 % 1400, seed);
    for (auto& c : junk)
      if (c == '\n')
        c = 'x';
    junk[0] = junk[0] == '?' ? 'x' : junk[0];
    ingest(junk, 1);
    ingest("r.ok:" + std::to_string(seed) + "|c", 0,
           {{"r.ok", static_cast<int64_t>(seed)}});
  }
  // The largest UDP payload, 65507 bytes of valid lines.
  std::string big;
  for (int i = 0; i < 6550; ++i)
    big += "w.big:1|c\n";
  big += "w.b:1|c";
  ASSERT_EQ(big.size(), 65507u);
  ingest(big, 0, {{"w.big", 6550}, {"w.b", 1}});
  // 65507 bytes of one overlong, malformed line.
  ingest(std::string(65507, 'z'), 1);
  // A big datagram with a malformed line in the middle.
  std::string mixed;
  for (int i = 0; i < 1000; ++i)
    mixed += i == 500 ? "w.mid:oops|c\n" : "w.mid:2|c\n";
  ingest(mixed, 1, {{"w.mid", 2 * 999}});
  ASSERT_TRUE(proc_->alive());
  check_totals();
}

TEST_F(TallyWire, MalformedQueriesAreCountedAndGetNoReply) {
  ingest("q.a:3|c", 0, {{"q.a", 3}});
  for (auto* q : {"?", "?bad name", "?a/b", "?\n", "?*x", "?q.a\n\n"}) {
    ASSERT_TRUE(client_->send(q)) << q;
    errors_ += 1;
    EXPECT_FALSE(client_->receive_within(300)) << "a reply to '" << q << "'";
  }
  ASSERT_TRUE(client_->send("?" + std::string(129, 'q')));
  errors_ += 1;
  EXPECT_FALSE(client_->receive_within(300)) << "a reply to a 129-byte name";
  // Valid queries still work, with the trailing newlines the protocol allows.
  EXPECT_EQ(ask("?q.a\n"), "q.a:3\n");
  EXPECT_EQ(ask("?q.a\r\n"), "q.a:3\n");
  EXPECT_EQ(ask("?unknown.name"), "unknown.name:0\n");
  ASSERT_TRUE(proc_->alive());
  check_totals();
}

// The pinning detector (docs/stats.md, binaries.oldest_holder and
// "holders"), end to end: `mayfly-tally --pin 1` with the detach policy off
// stores the received slices as keys, so each new name keeps its whole
// datagram alive. /stats must name the aggregator as the holder of the
// oldest live binary and at the top of the holders, and show the pinned
// bytes; at shutdown the aggregators exit and every balance is zero again.
class TallyPinWire : public TallyWire {
protected:
  const char* pin() const override {
    return "1";
  }

  bool detach_policy() const override {
    return false;
  }
};

// The same aggregators with the detach policy on (tally's default): the
// names they keep are copies the policy made when each batch was sent, so
// the datagrams' slots go back as soon as their handlers end.
class TallyPinDetachWire : public TallyPinWire {
protected:
  bool detach_policy() const override {
    return true;
  }
};

TEST_F(TallyPinWire, DetectorNamesThePinningAggregator) {
  // What the process holds for itself before: no live binary once its
  // loop is idle (ready receive slots are no binaries, and partly filled
  // send buffers are given back after 50 ms without work).
  json s0;
  for (int i = 0; i < 100; ++i) {
    s0 = get_stats(proc_->stats());
    if (!s0.is_discarded()
        && s0["pools"]["standard"]["binaries"]["live"].get<int64_t>() == 0)
      break;
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_FALSE(s0.is_discarded());
  auto live0 = s0["pools"]["standard"]["binaries"]["live"].get<int64_t>();
  EXPECT_EQ(live0, 0) << s0.dump();
  for (int i = 0; i < 20; ++i)
    ingest("pin." + std::to_string(i) + ":1|c", 0,
           {{"pin." + std::to_string(i), 1}});
  check_totals(); // all aggregated: the slices are stored now
  json s;
  for (int i = 0; i < 100; ++i) {
    s = get_stats(proc_->stats());
    // The last query's handler may still be exiting on a worker after its
    // reply arrived (it holds its request until then): wait for it too.
    if (!s.is_discarded()
        && s["pools"]["standard"]["binaries"]["live"].get<int64_t>()
             >= live0 + 20
        && s["runtime"]["balance"]["handlers"] == 0
        && s["runtime"]["balance"]["slices_live"] == 20)
      break;
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_FALSE(s.is_discarded());
  auto& pool = s["pools"]["standard"];
  // 20 datagrams kept whole for 20 names of 5 or 6 bytes (plus at most a
  // partly filled send buffer per thread that answered a query: workers and
  // the receive threads, where handlers start).
  auto live = pool["binaries"]["live"].get<int64_t>();
  auto repliers = s["runtime"]["workers"].get<int64_t>()
                  + udp_section(s)["receive_threads"].get<int64_t>();
  EXPECT_GE(live, live0 + 20) << s.dump();
  EXPECT_LE(live, live0 + 20 + repliers) << s.dump();
  EXPECT_EQ(s["binaries"]["oldest_holder"], "tally aggregator") << s.dump();
  EXPECT_GT(s["binaries"]["oldest_age_ms"].get<double>(), 0.0) << s.dump();
  EXPECT_EQ(s["runtime"]["balance"]["slices_live"], 20) << s.dump();
  EXPECT_EQ(s["binaries"]["dedicated_live"], 0) << s.dump(); // not detached
  // Pinned: 20 whole 2 KiB slots for 110 bytes of names.
  EXPECT_LT(s["binaries"]["viewed_bytes"].get<int64_t>() * 100,
            20 * pool["slot_size"].get<int64_t>())
    << s.dump();
  // The holders: the aggregators hold those 20 slots.
  auto& top = s["holders"]["by_holder"]["tally aggregator"];
  EXPECT_EQ(top["binaries"], 20) << s.dump();
  EXPECT_EQ(top["pinned_bytes"], 20 * pool["slot_size"].get<int64_t>())
    << s.dump();
  EXPECT_EQ(s["detach"]["enabled"], false) << s.dump();
  EXPECT_EQ(s["detach"]["slices_detached"], 0) << s.dump();
  // TearDown: SIGTERM, exit 0, "balance after stop: all zero".
}

TEST_F(TallyPinDetachWire, PolicyCopiesTheNamesAndReleasesTheDatagrams) {
  for (int i = 0; i < 20; ++i)
    ingest("pin." + std::to_string(i) + ":1|c", 0,
           {{"pin." + std::to_string(i), 1}});
  check_totals(); // all aggregated: the copies are stored now
  json s;
  for (int i = 0; i < 100; ++i) {
    s = get_stats(proc_->stats());
    if (!s.is_discarded() && s["runtime"]["balance"]["handlers"] == 0
        && s["detach"]["binaries_released_early"].get<int64_t>() >= 20
        && s["binaries"]["dedicated_live"] == 20)
      break;
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_FALSE(s.is_discarded());
  auto& d = s["detach"];
  EXPECT_EQ(d["enabled"], true) << s.dump();
  EXPECT_EQ(d["long_lived"], 2) << s.dump(); // --aggregators 2
  // One batch (one datagram's names) copied per datagram: its 5 or 6 bytes.
  EXPECT_EQ(d["slices_detached"], 20) << s.dump();
  EXPECT_EQ(d["bytes_copied"], 10 * 5 + 10 * 6) << s.dump();
  EXPECT_GE(d["binaries_released_early"].get<int64_t>(), 20) << s.dump();
  // What the aggregators keep: 20 names in 20 dedicated copies, no slot.
  EXPECT_EQ(s["runtime"]["balance"]["slices_live"], 20) << s.dump();
  EXPECT_EQ(s["binaries"]["dedicated_live"], 20) << s.dump();
  EXPECT_FALSE(s["holders"]["by_holder"].contains("tally aggregator"))
    << s.dump();
}

// Issue 18, item 7: an idle tally that ingested and answered queries holds
// only the receive slots its endpoint keeps ready: no frozen binary (no
// partly filled send buffer, no name kept as a slice of a datagram), so
// binaries.oldest_age_ms stays at zero instead of growing while idle.
TEST_F(TallyWire, IdleServerHoldsNoBinaryAndNothingAges) {
  for (int i = 0; i < 50; ++i) {
    std::string d;
    std::map<std::string, int64_t> good;
    for (int j = 0; j < 30; ++j) {
      auto name = "idle." + std::to_string((i * 7 + j) % 200);
      d += name + ":1|c\n";
      good[name] += 1;
    }
    ingest(d, 0, good);
    if (i % 5 == 4)
      ask("?*"); // answered after the datagrams before it: none can pile up
  }
  check_totals(); // queries answered (replies sent) from several threads
  auto s = wait_quiet(proc_->stats());
  ASSERT_TRUE(quiet(s)) << s.dump();
  std::this_thread::sleep_for(300ms);
  s = get_stats(proc_->stats());
  ASSERT_FALSE(s.is_discarded());
  auto& pool = s["pools"]["standard"];
  EXPECT_EQ(pool["binaries"]["live"], 0) << s.dump();
  EXPECT_EQ(pool["binaries"]["oldest_age_ms"].get<double>(), 0.0) << s.dump();
  // What is in use is only the receive batches being filled.
  EXPECT_EQ(pool["in_use"], pool["binaries"]["writable"]) << s.dump();
  EXPECT_EQ(s["binaries"]["oldest_age_ms"].get<double>(), 0.0) << s.dump();
}

// Issue 18, item 2: ever-new names must not grow an aggregator without
// bound. With --max-keys 10 and 2 aggregators at most 20 names are held;
// every line with a name beyond that is refused and counted under
// lines_refused.key_limit; names already held keep counting exactly.
class TallyBoundWire : public TallyWire {
protected:
  const char* max_keys() const override {
    return "10";
  }
};

TEST_F(TallyBoundWire, NewNamesBeyondTheBoundAreRefusedAndCounted) {
  // Fill: 200 distinct names, one line each, a query after each datagram
  // (answered once the datagram is aggregated: the small socket buffer
  // never fills, so no datagram is dropped by the kernel).
  for (int i = 0; i < 20; ++i) {
    std::string d;
    for (int j = 0; j < 10; ++j)
      d += "new." + std::to_string(i * 10 + j) + ":1|c\n";
    ASSERT_TRUE(client_->send(d));
    ask("?*");
  }
  auto summary = ask("?*");
  long long keys = -1, sum = -1, errors = -1;
  ASSERT_EQ(std::sscanf(summary.c_str(), "keys:%lld sum:%lld errors:%lld",
                        &keys, &sum, &errors),
            3)
    << summary;
  EXPECT_GE(keys, 10); // each aggregator holds up to 10 names
  EXPECT_LE(keys, 20);
  EXPECT_EQ(sum, keys); // each held name counted its one line
  EXPECT_EQ(errors, 0);
  auto s = get_stats(proc_->stats());
  ASSERT_FALSE(s.is_discarded());
  EXPECT_EQ(s["tally"]["lines_refused"]["key_limit"], 200 - keys) << s.dump();
  EXPECT_EQ(s["tally"]["max_keys_per_aggregator"], 10) << s.dump();
  EXPECT_EQ(s["tally"]["lines_applied"], keys) << s.dump();
  // A held name still counts exactly.
  std::string held;
  for (int i = 0; i < 200 && held.empty(); ++i) {
    auto name = "new." + std::to_string(i);
    auto r = ask("?" + name);
    if (r != name + ":0\n")
      held = name;
  }
  ASSERT_FALSE(held.empty());
  ASSERT_TRUE(client_->send(held + ":41|c\n"));
  EXPECT_EQ(ask("?" + held), held + ":42\n");
}

} // namespace
