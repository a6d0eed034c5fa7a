// Bad input on the wire against mayfly-echo, run as a subprocess on
// ephemeral loopback ports (docs/workloads.md §1: a request is 1 to 65507
// bytes and comes back byte for byte; a datagram the server cannot parse
// gets no reply and never affects other datagrams). Each odd datagram is
// sandwiched between valid requests whose replies are checked byte for
// byte; the endpoint's counters must account for every datagram; at the
// end nothing is outstanding (/stats) and the program exits 0 after
// SIGTERM with its balance at zero.

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "wire_support.hpp"

namespace {

using namespace wire;

class EchoWire : public ::testing::Test {
protected:
  // `jumbo_slot`: 0 disables the jumbo class.
  void start(size_t jumbo_slot) {
    config_ = write_config("echo", jumbo_slot);
    proc_ = std::make_unique<subprocess>(
      MAYFLY_ECHO_BIN,
      std::vector<std::string>{"--port", "0", "--stats", "127.0.0.1:0",
                               "--config", config_});
    ASSERT_TRUE(proc_->started())
      << "stdout: " << proc_->out()
      << "\nstderr: " << proc_->err();
    client_ = std::make_unique<client>(proc_->udp());
    before_ = udp_section(get_stats(proc_->stats()));
  }

  void TearDown() override {
    client_.reset();
    if (proc_ && proc_->started()) {
      // Whatever the test did: nothing outstanding once the traffic stops.
      auto s = wait_quiet(proc_->stats());
      EXPECT_TRUE(quiet(s)) << s.dump();
      expect_clean_stop(*proc_);
    }
    proc_.reset();
    std::remove(config_.c_str());
  }

  // A valid request; its reply must come back byte for byte.
  void valid(int k) {
    std::string req = "req-" + std::to_string(k) + " a valid echo request";
    ASSERT_TRUE(client_->send(req));
    auto got = client_->receive();
    ASSERT_TRUE(got) << "no reply to valid request " << k;
    EXPECT_EQ(*got, req) << "valid request " << k;
    ++sent_;
    ++answered_;
  }

  // An odd request that must be echoed byte for byte.
  void echoed(const std::string& bytes, const char* what) {
    ASSERT_TRUE(client_->send(bytes)) << what;
    auto got = client_->receive();
    ASSERT_TRUE(got) << "no reply to " << what;
    EXPECT_EQ(got->size(), bytes.size()) << what;
    EXPECT_TRUE(*got == bytes) << what << ": reply differs";
    ++sent_;
    ++answered_;
  }

  // A datagram that must get no reply.
  void unanswered(const std::string& bytes, const char* what) {
    ASSERT_TRUE(client_->send(bytes)) << what;
    auto got = client_->receive_within(300);
    EXPECT_FALSE(got) << what << " got a reply of " << got->size()
                      << " bytes";
    ++sent_;
  }

  json delta() {
    auto now = udp_section(get_stats(proc_->stats()));
    json d;
    for (auto key : {"datagrams_in", "datagrams_out", "large_drops",
                     "truncated", "spilled", "send_errors", "kernel_drops",
                     "policy_drops"})
      d[key] = now[key].get<int64_t>() - before_[key].get<int64_t>();
    return d;
  }

  // Waits (bounded) until the endpoint counted `in` datagrams in and `out`
  // out: a reply can reach the client before the server counts it.
  json wait_counts(int64_t in, int64_t out) {
    json d;
    for (int i = 0; i < 100; ++i) {
      d = delta();
      if (d["datagrams_in"] == in && d["datagrams_out"] == out)
        break;
      std::this_thread::sleep_for(20ms);
    }
    return d;
  }

  std::string config_;
  std::unique_ptr<subprocess> proc_;
  std::unique_ptr<client> client_;
  json before_;
  int64_t sent_ = 0;
  int64_t answered_ = 0;
};

TEST_F(EchoWire, OddSizesAndRandomBytesAmongValidRequests) {
  start(65536);
  int k = 0;
  valid(k++);
  unanswered("", "the empty datagram (not a request: 1 to 65507 bytes)");
  valid(k++);
  echoed("x", "a 1-byte request");
  valid(k++);
  echoed(std::string(8, '\0'), "8 zero bytes (a bare request id)");
  valid(k++);
  echoed(random_bytes(65507, 1), "a 65507-byte request (largest UDP payload)");
  valid(k++);
  echoed(random_bytes(2049, 2), "a 2049-byte request (one past a slot)");
  valid(k++);
  for (uint32_t seed = 10; seed < 40; ++seed) {
    echoed(random_bytes(1 + seed * 37 % 1500, seed), "random bytes");
    valid(k++);
  }
  ASSERT_TRUE(proc_->alive());
  // Nothing else arrived: no stray or duplicate replies.
  EXPECT_FALSE(client_->receive_within(200));
  auto d = wait_counts(sent_, answered_);
  EXPECT_EQ(d["datagrams_in"], sent_) << d.dump();
  EXPECT_EQ(d["datagrams_out"], answered_) << d.dump();
  EXPECT_EQ(d["spilled"], 2) << d.dump(); // 65507 and 2049 bytes
  EXPECT_EQ(d["large_drops"], 0) << d.dump();
  EXPECT_EQ(d["truncated"], 0) << d.dump();
  EXPECT_EQ(d["send_errors"], 0) << d.dump();
}

// A datagram larger than the largest configured buffer is counted and never
// delivered (cut or whole); a smaller large one still spills and is echoed.
TEST_F(EchoWire, LargerThanTheConfiguredMaximumIsCountedNotDelivered) {
  start(4096);
  valid(0);
  unanswered(random_bytes(10000, 3), "10000 bytes with 4096-byte jumbo slots");
  valid(1);
  unanswered(random_bytes(65507, 4), "65507 bytes with 4096-byte jumbo slots");
  valid(2);
  echoed(random_bytes(3000, 5), "3000 bytes: fits a jumbo slot");
  valid(3);
  ASSERT_TRUE(proc_->alive());
  auto d = wait_counts(sent_, answered_);
  EXPECT_EQ(d["large_drops"], 2) << d.dump();
  EXPECT_EQ(d["spilled"], 1) << d.dump();
  EXPECT_EQ(d["datagrams_out"], answered_) << d.dump();
}

TEST_F(EchoWire, WithoutAJumboClassLargeDatagramsAreDroppedAndCounted) {
  start(0);
  valid(0);
  unanswered(random_bytes(2049, 6), "2049 bytes without a jumbo class");
  valid(1);
  echoed(random_bytes(2048, 7), "2048 bytes: exactly one slot");
  valid(2);
  ASSERT_TRUE(proc_->alive());
  auto d = wait_counts(sent_, answered_);
  EXPECT_EQ(d["large_drops"], 1) << d.dump();
  EXPECT_EQ(d["spilled"], 0) << d.dump();
}

// A burst of bad and good datagrams without waiting: every valid request
// is still answered, and the counts add up.
TEST_F(EchoWire, BurstOfMixedDatagramsLosesNothing) {
  start(65536);
  constexpr int kRounds = 200;
  std::set<std::string> expected;
  for (int i = 0; i < kRounds; ++i) {
    std::string req = "burst-" + std::to_string(i);
    ASSERT_TRUE(client_->send(req));
    expected.insert(req);
    ASSERT_TRUE(client_->send("")); // no reply
    auto junk = random_bytes(1 + i % 700, 100 + i);
    ASSERT_TRUE(client_->send(junk));
    expected.insert(junk);
  }
  size_t got = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    auto r = client_->receive();
    if (!r)
      break;
    EXPECT_EQ(expected.count(*r), 1u) << "unexpected reply of " << r->size()
                                      << " bytes";
    ++got;
  }
  EXPECT_EQ(got, expected.size());
  EXPECT_FALSE(client_->receive_within(200)); // the empty ones: no reply
  auto d = wait_counts(3 * kRounds, 2 * kRounds);
  EXPECT_EQ(d["datagrams_in"], 3 * kRounds) << d.dump();
  EXPECT_EQ(d["datagrams_out"], 2 * kRounds) << d.dump();
  EXPECT_EQ(d["kernel_drops"], 0) << d.dump();
}

} // namespace

// Peers that vanish before their reply (the reply goes to a closed port:
// ICMP port unreachable on loopback) never stop the service: later requests
// are answered, every datagram is counted, every reply is either sent or
// counted as a send error.
TEST_F(EchoWire, PeersThatVanishBeforeTheirReplyChangeNothing) {
  start(65536);
  constexpr int kGone = 50;
  for (int i = 0; i < kGone; ++i) {
    client gone{proc_->udp()};
    ASSERT_TRUE(gone.send("gone-" + std::to_string(i)));
  } // closed at once: its reply finds no socket
  sent_ += kGone;
  for (int k = 0; k < 20; ++k)
    valid(k);
  ASSERT_TRUE(proc_->alive());
  json d;
  for (int i = 0; i < 100; ++i) {
    d = delta();
    if (d["datagrams_in"] == sent_
        && d["datagrams_out"].get<int64_t>() + d["send_errors"].get<int64_t>()
             == sent_)
      break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(d["datagrams_in"], sent_) << d.dump();
  EXPECT_EQ(d["datagrams_out"].get<int64_t>() + d["send_errors"].get<int64_t>(),
            sent_)
    << d.dump();
}
