// The detach policy (actors/detach_policy.hpp, issue 17 part 1): the rule at
// its bounds, what it counts, the table of long-lived actors, and the send
// paths that apply it (handler_context::send, fanout, batcher) under CAF's
// deterministic test coordinator; the top-holders report (part 3) from the
// same runtime.

#include <mayfly/actors/detach_policy.hpp>

#include <gtest/gtest.h>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include <cstring>
#include <memory>
#include <vector>

#include <mayfly/actors/fanout.hpp>
#include <mayfly/actors/messages.hpp>
#include <mayfly/actors/runtime.hpp>
#include "tests/support/small_runtime.hpp"
#include "fake_sink.hpp"

namespace {

using namespace mayfly;

// -- the rule on its own --------------------------------------------------------------

class DetachRule : public ::testing::Test {
protected:
  void SetUp() override {
    buffer_pools_config cfg;
    cfg.standard_slot_size = 2048;
    cfg.standard_capacity = 16;
    cfg.jumbo_capacity = 0;
    cfg.huge_pages = false;
    auto made = buffer_pools::make(cfg);
    ASSERT_TRUE(made) << made.error().message();
    pools = std::move(*made);
  }

  void TearDown() override {
    EXPECT_EQ(pools->outstanding(), 0);
  }

  // A binary of `n` bytes 'a', 'b', ... in a standard slot.
  slice binary(size_t n) {
    auto buf = pools->standard().acquire();
    EXPECT_TRUE(buf);
    for (size_t i = 0; i < n; ++i)
      buf->data()[i] = static_cast<std::byte>('a' + i % 26);
    return std::move(*buf).freeze(n);
  }

  std::unique_ptr<buffer_pools> pools;
};

TEST_F(DetachRule, AppliesAtTheBoundsOnly) {
  detach_config cfg;
  cfg.max_slice_bytes = 8;
  cfg.min_binary_bytes = 2048; // the slot size exactly
  detach_policy at_bounds{cfg};
  auto b = binary(100);
  EXPECT_TRUE(at_bounds.applies(b.sub(0, 8)));
  EXPECT_TRUE(at_bounds.applies(b.sub(0, 0)));
  EXPECT_FALSE(at_bounds.applies(b.sub(0, 9)));
  EXPECT_FALSE(at_bounds.applies(slice{})); // owns nothing
  cfg.min_binary_bytes = 2049; // binaries just too small
  detach_policy small_binaries{cfg};
  EXPECT_FALSE(small_binaries.applies(b.sub(0, 8)));
  cfg.min_binary_bytes = 2048;
  cfg.enabled = false;
  detach_policy off{cfg};
  EXPECT_FALSE(off.applies(b.sub(0, 8)));
}

TEST_F(DetachRule, ConfigNeedsSlicesBelowBinaries) {
  detach_config cfg;
  cfg.max_slice_bytes = 1024;
  cfg.min_binary_bytes = 1024;
  auto err = check_detach_config(cfg);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->message(), "runtime.detach.max_slice_bytes: must be below "
                            "runtime.detach.min_binary_bytes");
  cfg.max_slice_bytes = 1023;
  EXPECT_FALSE(check_detach_config(cfg));
}

TEST_F(DetachRule, CopyReleasesTheBinaryEarlyAndCounts) {
  detach_policy policy{detach_config{}};
  auto b = binary(300);
  auto sent = policy.prepare(7, b.sub(10, 20));
  EXPECT_EQ(sent.view(), b.view().substr(10, 10));
  EXPECT_FALSE(sent.pooled()); // a dedicated binary of its own
  EXPECT_EQ(sent.pinned_bytes(), 10u);
  EXPECT_EQ(policy.count(detach_policy::slices_detached), 1);
  EXPECT_EQ(policy.count(detach_policy::bytes_copied), 10);
  EXPECT_EQ(policy.count(detach_policy::sent_as_is), 0);
  EXPECT_EQ(pools->standard().released_early(), 0); // still referenced
  b.reset();
  // The slot went back although the copy lives on: released early.
  EXPECT_EQ(pools->standard().slots().in_use(), 0);
  EXPECT_EQ(pools->standard().released_early(), 1);
  // A zero-length view is "detached" into nothing at all.
  auto e = binary(50);
  EXPECT_FALSE(policy.prepare(7, e.sub(5, 5)).has_owner());
  EXPECT_EQ(policy.count(detach_policy::slices_detached), 2);
  EXPECT_EQ(policy.count(detach_policy::bytes_copied), 10);
}

TEST_F(DetachRule, LargeSliceGoesAsItIsAttributedAndNotEarly) {
  detach_policy policy{detach_config{}};
  auto b = binary(1000);
  auto big = policy.prepare(9, b.sub(0, 129)); // one past max_slice_bytes
  EXPECT_TRUE(big.pooled());
  EXPECT_EQ(big.data(), b.data());
  EXPECT_EQ(b.holder(), 9u);
  // A small slice of the same binary is still copied, but a long-lived
  // actor holds the binary anyway: not released early.
  auto small = policy.prepare(9, b.sub(0, 4));
  EXPECT_FALSE(small.pooled());
  EXPECT_EQ(policy.count(detach_policy::sent_as_is), 1);
  EXPECT_EQ(policy.count(detach_policy::slices_detached), 1);
  b.reset();
  big.reset();
  EXPECT_EQ(pools->standard().released_early(), 0);
}

TEST_F(DetachRule, KeyBatchGetsItsKeysPacked) {
  detach_policy policy{detach_config{}};
  auto b = binary(500);
  key_batch batch;
  batch.source = b;
  auto text = b.view();
  batch.push(text.substr(100, 5), key_hash(text.substr(100, 5)), 1);
  batch.push(text.substr(300, 7), key_hash(text.substr(300, 7)), 2);
  policy.prepare(3, batch);
  EXPECT_FALSE(batch.source.pooled());
  EXPECT_EQ(batch.source.size(), 12u);
  EXPECT_EQ(batch.key(batch.items[0]), text.substr(100, 5));
  EXPECT_EQ(batch.key(batch.items[1]), text.substr(300, 7));
  EXPECT_EQ(batch.items[1].hash, key_hash(text.substr(300, 7)));
  EXPECT_EQ(policy.count(detach_policy::slices_detached), 1); // one copy
  EXPECT_EQ(policy.count(detach_policy::bytes_copied), 12);
  b.reset();
  EXPECT_EQ(pools->standard().released_early(), 1);
  // Keys adding up to more than max_slice_bytes: the batch goes as it is.
  auto c = binary(1000);
  key_batch large;
  large.source = c;
  large.push(c.view().substr(0, 100), key_hash(c.view().substr(0, 100)), 1);
  large.push(c.view().substr(100, 29), key_hash(c.view().substr(100, 29)), 1);
  policy.prepare(3, large);
  EXPECT_TRUE(large.source.pooled());
  EXPECT_EQ(c.holder(), 3u);
  EXPECT_EQ(policy.count(detach_policy::sent_as_is), 1);
}

TEST_F(DetachRule, SliceBatchItemsAreDecidedOneByOne) {
  detach_policy policy{detach_config{}};
  auto b = binary(600);
  slice_batch batch;
  batch.push(b.sub(0, 3), 1);
  batch.push(b.sub(0, 200), 2);
  policy.prepare(4, batch);
  EXPECT_FALSE(batch.items[0].key.pooled());
  EXPECT_TRUE(batch.items[1].key.pooled());
  EXPECT_EQ(batch.items[0].key, b.view().substr(0, 3));
  EXPECT_EQ(policy.count(detach_policy::slices_detached), 1);
  EXPECT_EQ(policy.count(detach_policy::sent_as_is), 1);
}

TEST(DetachConfig, ReadFromJsonWithNamedErrors) {
  auto cfg = parse_runtime_config(
    {{"runtime",
      {{"detach", {{"enabled", false}, {"max_slice_bytes", 64},
                   {"min_binary_bytes", 4096}}},
       {"top_holders", 3}}}});
  ASSERT_TRUE(cfg) << cfg.error().message();
  EXPECT_FALSE(cfg->detach.enabled);
  EXPECT_EQ(cfg->detach.max_slice_bytes, 64u);
  EXPECT_EQ(cfg->detach.min_binary_bytes, 4096u);
  EXPECT_EQ(cfg->top_holders, 3u);
  runtime_config defaults;
  EXPECT_TRUE(defaults.detach.enabled);
  EXPECT_EQ(defaults.detach.max_slice_bytes, 128u);
  EXPECT_EQ(defaults.detach.min_binary_bytes, 1024u);
  EXPECT_EQ(defaults.top_holders, 10u);
  auto error_of = [](const nlohmann::json& doc) {
    auto r = parse_runtime_config(doc);
    return r ? std::string{} : r.error().message();
  };
  EXPECT_EQ(error_of({{"runtime", {{"detach", {{"max_slice_bytes", 2048}}}}}}),
            "runtime.detach.max_slice_bytes: must be below "
            "runtime.detach.min_binary_bytes");
  EXPECT_EQ(error_of({{"runtime", {{"detach", {{"below", 1}}}}}}),
            "runtime.detach.below: unknown field");
  EXPECT_EQ(error_of({{"runtime", {{"top_holders", 0}}}}),
            "runtime.top_holders: value out of range");
}

// -- the table of long-lived actors -----------------------------------------------------

TEST(DetachPolicyTable, MarkLookUpUnmarkAtCapacity) {
  detach_policy policy{detach_config{}};
  // Stand-ins for control blocks: only their addresses are used.
  constexpr size_t n = detach_policy::kMaxLongLived + 1;
  auto blocks = std::make_unique<std::array<std::max_align_t, 8>[]>(n);
  auto at = [&](size_t i) {
    return reinterpret_cast<const caf::actor_control_block*>(&blocks[i]);
  };
  for (size_t i = 0; i + 1 < n; ++i)
    ASSERT_TRUE(policy.mark(at(i), static_cast<uint32_t>(i + 1)));
  EXPECT_FALSE(policy.mark(at(n - 1), 99)); // full: refused, counted
  EXPECT_EQ(policy.count(detach_policy::mark_refused), 1);
  EXPECT_TRUE(policy.mark(at(5), 1000)); // a new tag for a marked actor
  EXPECT_EQ(policy.marked(), detach_policy::kMaxLongLived);
  // Unmark every other one: the rest must still be found (the table moves
  // entries back into the holes), the unmarked ones not.
  for (size_t i = 0; i + 1 < n; i += 2)
    policy.unmark(at(i));
  for (size_t i = 0; i + 1 < n; ++i) {
    uint32_t want = i % 2 == 0 ? 0 : i == 5 ? 1000 : static_cast<uint32_t>(i + 1);
    ASSERT_EQ(policy.holder_of(at(i)), want) << "entry " << i;
  }
  policy.unmark(at(n - 1)); // never marked: nothing happens
  EXPECT_EQ(policy.marked(), detach_policy::kMaxLongLived / 2);
  EXPECT_TRUE(policy.mark(at(n - 1), 7));
  EXPECT_EQ(policy.holder_of(at(n - 1)), 7u);
}

// -- the send paths, in a runtime -----------------------------------------------------------

struct keeper_state {
  std::vector<slice> kept;
};

class DetachSend : public ::testing::Test {
protected:
  void start(detach_config detach, uint32_t top_holders = 10) {
    auto cfg = test::testing_runtime_config();
    cfg.memory.buffers.standard_capacity = 64;
    cfg.memory.buffers.jumbo_capacity = 2;
    cfg.memory.arenas.capacity = 16;
    cfg.detach = detach;
    cfg.top_holders = top_holders;
    auto made = test::make_testing_runtime(cfg);
    ASSERT_TRUE(made) << made.error().message();
    rt = std::move(*made);
    rt->start();
    peer = *udp_address::parse("127.0.0.1:5000");
  }

  void TearDown() override {
    sink.take();
    test::stop_and_expect_balanced(rt);
  }

  caf::scheduler::test_coordinator& sched() {
    return dynamic_cast<caf::scheduler::test_coordinator&>(
      rt->system().scheduler());
  }

  // A long-lived actor keeping every slice and every batch's keys it gets.
  // (The int works around CAF 0.17.6's argument-less function spawn.)
  caf::actor spawn_keeper(std::shared_ptr<std::vector<slice>> kept) {
    return rt->spawn(
      [kept](caf::event_based_actor*, int) -> caf::behavior {
        return {
          [kept](const slice& s) { kept->push_back(s); },
          [kept](const key_batch& b) {
            for (auto& item : b.view())
              kept->push_back(b.source.sub(item.offset,
                                           item.offset + item.length));
          },
          [kept](const slice_batch& b) {
            for (auto& kv : b.view())
              kept->push_back(kv.key);
          },
        };
      },
      0);
  }

  dispatch_status dispatch(handler_type& h, std::string_view text) {
    auto buf = rt->buffers().acquire(text.size());
    EXPECT_TRUE(buf);
    std::memcpy(buf->data(), text.data(), text.size());
    datagram d{std::move(*buf).freeze(text.size()), peer, &sink, 0};
    return rt->dispatch(h, d);
  }

  int64_t standard_in_use() {
    return rt->buffers().standard().slots().in_use();
  }

  std::unique_ptr<runtime> rt;
  test::fake_sink sink;
  udp_address peer;
};

TEST_F(DetachSend, HandlerSendToLongLivedActorCopiesSmallSlices) {
  start(detach_config{});
  auto kept = std::make_shared<std::vector<slice>>();
  auto keeper = spawn_keeper(kept);
  auto plain = spawn_keeper(kept); // not marked: gets the slice as it is
  auto tag = rt->mark_long_lived(keeper, "keeper");
  ASSERT_NE(tag, 0u);
  EXPECT_EQ(rt->detach().marked(), 1u);
  auto& h = rt->add_handler("fwd", [keeper](handler_context& ctx,
                                            const datagram& d) {
    ctx.send(keeper, d.payload.sub(0, 8));
  });
  ASSERT_EQ(dispatch(h, "cpu.load:42|c"), dispatch_status::spawned);
  sched().run();
  ASSERT_EQ(kept->size(), 1u);
  EXPECT_EQ((*kept)[0], "cpu.load");
  EXPECT_FALSE((*kept)[0].pooled());
  EXPECT_EQ(standard_in_use(), 0); // the datagram's slot is back already
  auto doc = rt->collect_stats()["detach"];
  EXPECT_EQ(doc["slices_detached"], 1) << doc.dump();
  EXPECT_EQ(doc["bytes_copied"], 8) << doc.dump();
  EXPECT_EQ(doc["binaries_released_early"], 1) << doc.dump();
  EXPECT_EQ(doc["long_lived"], 1) << doc.dump();
  // To an actor nobody marked, the same send pins the datagram.
  auto& h2 = rt->add_handler("fwd2", [plain](handler_context& ctx,
                                             const datagram& d) {
    ctx.send(plain, d.payload.sub(0, 8));
  });
  ASSERT_EQ(dispatch(h2, "mem.free:1|c"), dispatch_status::spawned);
  sched().run();
  ASSERT_EQ(kept->size(), 2u);
  EXPECT_TRUE((*kept)[1].pooled());
  EXPECT_EQ(standard_in_use(), 1);
  EXPECT_EQ(rt->collect_stats()["detach"]["slices_detached"], 1);
  kept->clear();
}

TEST_F(DetachSend, MarkGoesWhenTheActorExits) {
  start(detach_config{});
  auto kept = std::make_shared<std::vector<slice>>();
  auto keeper = spawn_keeper(kept);
  ASSERT_NE(rt->mark_long_lived(keeper, "keeper"), 0u);
  EXPECT_NE(rt->detach().holder_of(keeper), 0u);
  caf::anon_send_exit(keeper, caf::exit_reason::user_shutdown);
  sched().run();
  EXPECT_EQ(rt->detach().marked(), 0u);
  EXPECT_EQ(rt->detach().holder_of(keeper), 0u);
  // An invalid handle marks nothing.
  EXPECT_EQ(rt->mark_long_lived(caf::actor{}, "nobody"), 0u);
}

TEST_F(DetachSend, FanoutAndBatcherApplyThePolicyPerBatch) {
  start(detach_config{});
  auto kept = std::make_shared<std::vector<slice>>();
  std::vector<caf::actor> dests{spawn_keeper(kept)};
  ASSERT_NE(rt->mark_long_lived(dests[0], "keeper"), 0u);
  auto& h = rt->add_handler("fan", [&dests](handler_context& ctx,
                                            const datagram& d) {
    fanout out{ctx, dests, d.payload};
    out.add(0, d.payload.view().substr(0, 3), key_hash("abc"), 1);
    out.add(0, d.payload.view().substr(4, 3), key_hash("def"), 1);
    out.flush();
    batcher b{ctx, dests};
    b.add(0, d.payload.sub(8, 11), 1);
    b.flush();
  });
  ASSERT_EQ(dispatch(h, "abc def ghi"), dispatch_status::spawned);
  sched().run();
  ASSERT_EQ(kept->size(), 3u);
  EXPECT_EQ((*kept)[0], "abc");
  EXPECT_EQ((*kept)[1], "def");
  EXPECT_EQ((*kept)[2], "ghi");
  for (auto& s : *kept)
    EXPECT_FALSE(s.pooled());
  EXPECT_EQ(standard_in_use(), 0);
  auto doc = rt->collect_stats()["detach"];
  EXPECT_EQ(doc["slices_detached"], 2) << doc.dump(); // one batch, one slice
  EXPECT_EQ(doc["bytes_copied"], 9) << doc.dump();
  EXPECT_EQ(doc["binaries_released_early"], 1) << doc.dump();
  kept->clear();
}

TEST_F(DetachSend, OffTheHolderShowsInTheTopHolders) {
  detach_config off;
  off.enabled = false;
  start(off, 1);
  auto kept = std::make_shared<std::vector<slice>>();
  auto keeper = spawn_keeper(kept);
  auto cache = spawn_keeper(kept);
  ASSERT_NE(rt->mark_long_lived(keeper, "keeper"), 0u);
  ASSERT_NE(rt->mark_long_lived(cache, "cache"), 0u);
  auto& h = rt->add_handler("fwd", [keeper, cache](handler_context& ctx,
                                                   const datagram& d) {
    ctx.send(d.payload.view()[0] == 'k' ? keeper : cache, d.payload.sub(0, 4));
  });
  for (auto text : {"k:1 twenty bytes....", "k:22", "k:33", "c:11"})
    ASSERT_EQ(dispatch(h, text), dispatch_status::spawned);
  sched().run();
  ASSERT_EQ(kept->size(), 4u);
  EXPECT_EQ(standard_in_use(), 4);
  auto doc = rt->collect_stats();
  auto& holders = doc["holders"];
  EXPECT_EQ(holders["top_n"], 1) << holders.dump();
  EXPECT_EQ(holders["holders"], 2) << holders.dump();
  auto& top = holders["by_holder"]["keeper"];
  EXPECT_EQ(top["binaries"], 3) << holders.dump();
  EXPECT_EQ(top["pinned_bytes"], 3 * 2048) << holders.dump();
  // Viewed: the keeper's three 4-byte slices (the handlers' datagrams are
  // gone), not the 28 bytes received.
  EXPECT_EQ(top["viewed_bytes"], 3 * 4) << holders.dump();
  EXPECT_GE(top["oldest_age_ms"].get<double>(), 0.0) << holders.dump();
  // Beyond top_n: summed as "(other)", never named.
  EXPECT_FALSE(holders["by_holder"].contains("cache")) << holders.dump();
  EXPECT_EQ(holders["by_holder"]["(other)"]["binaries"], 1) << holders.dump();
  EXPECT_EQ(doc["detach"]["sent_as_is"], 4) << doc.dump();
  EXPECT_EQ(doc["detach"]["slices_detached"], 0) << doc.dump();
  kept->clear();
  EXPECT_EQ(rt->collect_stats()["detach"]["binaries_released_early"], 0);
  EXPECT_TRUE(rt->collect_stats()["holders"]["by_holder"].empty());
}

} // namespace
