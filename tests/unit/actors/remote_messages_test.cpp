// slice and slice_batch across nodes (actors/messages.hpp): what CAF's
// middleman does with them, without a network. Serialized with CAF's binary
// serializer, they come back as fresh binaries from the receiving runtime's
// pools, the pools balance back to zero, and hostile input is rejected with
// a mayfly error, counted, and leaks nothing. Local sends stay zero-copy.

#include <mayfly/actors/messages.hpp>

#include <gtest/gtest.h>

#include <caf/all.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include <random>
#include <string>
#include <vector>

#include <mayfly/actors/errors.hpp>
#include <mayfly/actors/fanout.hpp>
#include <mayfly/actors/runtime.hpp>
#include "tests/support/small_runtime.hpp"

namespace {

using namespace mayfly;
using bytes = std::vector<char>;

runtime_config small_config() {
  auto cfg = test::testing_runtime_config();
  cfg.memory.buffers.standard_capacity = 16;
  cfg.memory.buffers.jumbo_capacity = 2;
  cfg.memory.arenas.capacity = 4;
  return cfg;
}

bool is(const caf::error& err, errc code) {
  return err.category() == caf::atom("mayfly")
         && err.code() == static_cast<uint8_t>(code);
}

int64_t counter(const char* group, const char* name) {
  return remote_message_stats()[group][name].get<int64_t>();
}

class RemoteMessages : public ::testing::Test {
protected:
  void SetUp() override {
    auto made = test::make_testing_runtime(small_config());
    ASSERT_TRUE(made) << made.error().message();
    rt = std::move(*made);
    rt->start();
  }

  void TearDown() override {
    rt->stop();
    EXPECT_TRUE(rt->balance().zero()) << rt->balance().to_json().dump();
    rt.reset();
    EXPECT_EQ(slice::live_count(), 0);
  }

  template <class T>
  bytes save(T& x) {
    bytes buf;
    caf::binary_serializer sink{rt->system(), buf};
    auto err = sink(x);
    EXPECT_FALSE(err) << rt->system().render(err);
    return buf;
  }

  template <class T>
  caf::error load(const bytes& buf, T& x) {
    caf::binary_deserializer source{rt->system(), buf};
    return source(x);
  }

  // A "received datagram": a pooled binary, as the network layer makes.
  slice datagram(std::string_view text) {
    auto buf = rt->buffers().acquire(text.size());
    EXPECT_TRUE(buf);
    std::memcpy(buf->data(), text.data(), text.size());
    return std::move(*buf).freeze(text.size());
  }

  std::unique_ptr<runtime> rt;
};

TEST_F(RemoteMessages, SliceArrivesAsAFreshBinaryFromTheReceiversPool) {
  auto sent = datagram("hello, other node");
  auto buf = save(sent);
  auto before = rt->buffers().outstanding();
  slice got;
  ASSERT_FALSE(load(buf, got));
  EXPECT_EQ(got, "hello, other node");
  EXPECT_TRUE(got.pooled());
  EXPECT_NE(got.data(), sent.data()); // a copy: a new binary
  EXPECT_EQ(got.use_count(), 1u);
  EXPECT_EQ(rt->buffers().outstanding(), before + 1);
  got.reset();
  sent.reset();
  EXPECT_EQ(rt->buffers().outstanding(), before - 1);
}

TEST_F(RemoteMessages, BatchArrivesAsOneBinaryHoldingAllKeys) {
  auto d = datagram("alpha:1|c\nbe:-2|c\ngamma.delta:3|c\n");
  slice_batch batch;
  batch.push(d.sub(0, 5), 1);
  batch.push(d.sub(10, 12), -2);
  batch.push(d.sub(18, 29), 3);
  auto received0 = counter("received", "batches");
  auto buf = save(batch);
  auto before = rt->buffers().outstanding();
  slice_batch got;
  ASSERT_FALSE(load(buf, got));
  ASSERT_EQ(got.size, 3u);
  EXPECT_EQ(got.items[0].key, "alpha");
  EXPECT_EQ(got.items[1].key, "be");
  EXPECT_EQ(got.items[2].key, "gamma.delta");
  EXPECT_EQ(got.items[0].value, 1);
  EXPECT_EQ(got.items[1].value, -2);
  EXPECT_EQ(got.items[2].value, 3);
  // One new binary, shared by the three keys, back to back.
  EXPECT_EQ(rt->buffers().outstanding(), before + 1);
  EXPECT_TRUE(got.items[0].key.pooled());
  EXPECT_EQ(got.items[0].key.use_count(), 3u);
  EXPECT_EQ(got.items[1].key.data(), got.items[0].key.data() + 5);
  EXPECT_EQ(counter("received", "batches"), received0 + 1);
  got = slice_batch{};
  EXPECT_EQ(rt->buffers().outstanding(), before);
}

// key_batch crosses nodes in slice_batch's wire format: the keys arrive
// in one fresh binary that the batch holds once, and every hash is
// recomputed by the receiver (a forged hash is never used).
TEST_F(RemoteMessages, KeyBatchArrivesAsOneBinaryWithHashesRecomputed) {
  auto d = datagram("alpha:1|c\nbe:-2|c\ngamma.delta:3|c\n");
  auto text = d.view();
  key_batch batch;
  batch.source = d;
  batch.push(text.substr(0, 5), 12345, 1); // a wrong hash: not sent
  batch.push(text.substr(10, 2), key_hash("be"), -2);
  batch.push(text.substr(18, 11), key_hash("gamma.delta"), 3);
  auto buf = save(batch);
  // The same bytes as a slice_batch of the same keys.
  slice_batch same;
  same.push(d.sub(0, 5), 1);
  same.push(d.sub(10, 12), -2);
  same.push(d.sub(18, 29), 3);
  EXPECT_EQ(buf, save(same));
  auto before = rt->buffers().outstanding();
  key_batch got;
  ASSERT_FALSE(load(buf, got));
  ASSERT_EQ(got.size, 3u);
  EXPECT_EQ(got.key(got.items[0]), "alpha");
  EXPECT_EQ(got.key(got.items[1]), "be");
  EXPECT_EQ(got.key(got.items[2]), "gamma.delta");
  EXPECT_EQ(got.items[0].hash, key_hash("alpha"));
  EXPECT_EQ(got.items[2].hash, key_hash("gamma.delta"));
  EXPECT_EQ(got.items[1].value, -2);
  EXPECT_EQ(rt->buffers().outstanding(), before + 1);
  EXPECT_EQ(got.source.use_count(), 1u); // one reference for three keys
  EXPECT_NE(got.source.data(), d.data());
  got = key_batch{};
  EXPECT_EQ(rt->buffers().outstanding(), before);
}

TEST_F(RemoteMessages, KeyBatchWithLengthsPastItsBytesIsRejected) {
  auto d = datagram("abc");
  slice_batch forged; // lengths are checked against the bytes sent
  forged.push(d.sub(0, 3), 1);
  auto buf = save(forged);
  key_batch ok;
  ASSERT_FALSE(load(buf, ok));
  EXPECT_EQ(ok.key(ok.items[0]), "abc");
  ok = key_batch{};
  // Cut the last item's value short: truncated, nothing kept.
  buf.resize(buf.size() - 4);
  key_batch got;
  auto err = load(buf, got);
  EXPECT_TRUE(is(err, errc::malformed)) << rt->system().render(err);
  EXPECT_EQ(got.size, 0u);
  EXPECT_FALSE(got.source.has_owner());
}

TEST_F(RemoteMessages, EmptySliceBatchAndEmptyKeysRoundTrip) {
  slice empty;
  slice got = datagram("x");
  ASSERT_FALSE(load(save(empty), got));
  EXPECT_TRUE(got.empty());
  EXPECT_FALSE(got.has_owner()); // nothing allocated for nothing
  slice_batch none;
  slice_batch batch_got;
  ASSERT_FALSE(load(save(none), batch_got));
  EXPECT_EQ(batch_got.size, 0u);
  slice_batch blanks;
  blanks.push(slice{}, 7);
  blanks.push(slice{}, 8);
  ASSERT_FALSE(load(save(blanks), batch_got));
  ASSERT_EQ(batch_got.size, 2u);
  EXPECT_TRUE(batch_got.items[0].key.empty());
  EXPECT_EQ(batch_got.items[1].value, 8);
}

TEST_F(RemoteMessages, OversizeSliceIsRejectedBeforeAnyAllocation) {
  bytes buf;
  caf::binary_serializer sink{rt->system(), buf};
  size_t claimed = kMaxRemoteSliceBytes + 1;
  ASSERT_FALSE(sink.begin_sequence(claimed)); // a length, and no bytes
  auto rejected0 = counter("rejected", "too_large");
  auto before = rt->buffers().outstanding();
  slice got;
  auto err = load(buf, got);
  EXPECT_TRUE(is(err, errc::too_large)) << rt->system().render(err);
  EXPECT_NE(rt->system().render(err).find("65536 bytes"), std::string::npos)
    << rt->system().render(err);
  EXPECT_EQ(rt->buffers().outstanding(), before);
  EXPECT_EQ(counter("rejected", "too_large"), rejected0 + 1);
  EXPECT_FALSE(got.has_owner());
}

TEST_F(RemoteMessages, BatchOverCapacityIsMalformed) {
  bytes buf;
  caf::binary_serializer sink{rt->system(), buf};
  uint32_t items = slice_batch::kCapacity + 1;
  ASSERT_FALSE(sink(items));
  slice_batch got;
  auto err = load(buf, got);
  EXPECT_TRUE(is(err, errc::malformed)) << rt->system().render(err);
  EXPECT_EQ(got.size, 0u);
}

TEST_F(RemoteMessages, KeyLengthsThatDoNotAddUpAreMalformed) {
  // Handcrafted batches: 2 items over 6 key bytes, with lengths that
  // overrun (4 + 4) or leave bytes over (1 + 1).
  for (uint32_t len : {4u, 1u}) {
    bytes buf;
    caf::binary_serializer sink{rt->system(), buf};
    uint32_t items = 2;
    size_t total = 6;
    char keys[] = "abcdef";
    ASSERT_FALSE(sink(items));
    ASSERT_FALSE(sink.begin_sequence(total));
    ASSERT_FALSE(sink.apply_raw(total, keys));
    ASSERT_FALSE(sink.end_sequence());
    int64_t value = 1;
    uint32_t l1 = len, l2 = len;
    ASSERT_FALSE(sink(l1, value, l2, value));
    auto before = rt->buffers().outstanding();
    slice_batch got;
    auto err = load(buf, got);
    EXPECT_TRUE(is(err, errc::malformed)) << len << ": "
                                          << rt->system().render(err);
    EXPECT_EQ(got.size, 0u);
    EXPECT_EQ(rt->buffers().outstanding(), before) << "leaked on " << len;
  }
}

TEST_F(RemoteMessages, EveryTruncationIsRejectedAndLeaksNothing) {
  auto d = datagram("one:1|c\ntwo:2|c\n");
  slice_batch batch;
  batch.push(d.sub(0, 3), 1);
  batch.push(d.sub(8, 11), 2);
  auto full = save(batch);
  auto before = rt->buffers().outstanding();
  auto live = slice::live_count();
  for (size_t n = 0; n < full.size(); ++n) {
    bytes part(full.begin(), full.begin() + static_cast<ptrdiff_t>(n));
    slice_batch got;
    auto err = load(part, got);
    EXPECT_TRUE(is(err, errc::malformed)) << n << ": "
                                          << rt->system().render(err);
    EXPECT_EQ(got.size, 0u);
  }
  EXPECT_EQ(rt->buffers().outstanding(), before);
  EXPECT_EQ(slice::live_count(), live);
}

TEST_F(RemoteMessages, RandomBytesNeverCrashAndBalance) {
  std::mt19937 rng{42};
  auto before = rt->buffers().outstanding();
  auto live = slice::live_count();
  for (int i = 0; i < 3000; ++i) {
    bytes junk(rng() % 64);
    for (auto& c : junk)
      c = static_cast<char>(rng());
    slice_batch batch;
    (void) load(junk, batch);
    slice one;
    (void) load(junk, one);
  }
  EXPECT_EQ(rt->buffers().outstanding(), before);
  EXPECT_EQ(slice::live_count(), live);
}

TEST_F(RemoteMessages, ExhaustedPoolIsRejectedAndCounted) {
  std::vector<slice> hold; // take every standard slot
  for (;;) {
    auto buf = rt->buffers().standard().try_acquire();
    if (!buf)
      break;
    hold.push_back(std::move(buf).freeze(0));
  }
  slice small = slice::copy_of("fits a standard slot");
  auto buf = save(small);
  auto rejected0 = counter("rejected", "pool_exhausted");
  slice got;
  auto err = load(buf, got);
  EXPECT_TRUE(is(err, errc::pool_exhausted)) << rt->system().render(err);
  EXPECT_EQ(counter("rejected", "pool_exhausted"), rejected0 + 1);
}

TEST(RemoteMessagesNoRuntime, ASystemWithoutRuntimeRejectsClearly) {
  caf::actor_system_config cfg;
  cfg.set("scheduler.policy", caf::atom("testing"));
  add_message_types(cfg);
  caf::actor_system sys{cfg};
  slice sent = slice::copy_of("orphan");
  bytes buf;
  {
    caf::binary_serializer sink{sys, buf};
    ASSERT_FALSE(sink(sent));
  }
  caf::binary_deserializer source{sys, buf};
  slice got;
  auto err = source(got);
  EXPECT_TRUE(is(err, errc::not_running));
  EXPECT_FALSE(got.has_owner());
}

// -- local sends ------------------------------------------------------------------

TEST_F(RemoteMessages, LocalSendIsZeroCopy) {
  auto d = datagram("key:5|c\n");
  const std::byte* seen = nullptr;
  uint32_t refs_seen = 0;
  auto receiver = rt->spawn(
    [&](caf::event_based_actor*, int) -> caf::behavior {
      return {
        [&](const slice_batch& batch) {
          seen = batch.items[0].key.data();
          refs_seen = batch.items[0].key.use_count();
        },
      };
    },
    0);
  slice_batch batch;
  batch.push(d.sub(0, 3), 5);
  auto sent0 = counter("sent", "batches");
  auto received0 = counter("received", "batches");
  caf::anon_send(receiver, std::move(batch));
  dynamic_cast<caf::scheduler::test_coordinator&>(rt->system().scheduler())
    .run();
  EXPECT_EQ(seen, d.data()); // the very bytes of the datagram
  EXPECT_EQ(refs_seen, 2u);  // d and the key in the message: no copy
  EXPECT_EQ(counter("sent", "batches"), sent0);
  EXPECT_EQ(counter("received", "batches"), received0);
}

TEST_F(RemoteMessages, MessagesPrintTheirKeys) {
  slice_batch batch;
  batch.push(slice::copy_of("visible"), 3);
  auto text = caf::to_string(caf::make_message(batch));
  EXPECT_NE(text.find("visible=3"), std::string::npos) << text;
}

} // namespace
