// fanout, key_batch and key_table (actors/fanout.hpp): items grouped per
// destination by key hash, one message per full batch plus one per
// destination at flush, order kept, each batch holding one reference to the
// datagram for all its keys (zero-copy), hashes carried with the items; the
// table's totals, its bound on keys (refusals counted) and its keys copied
// (no slice kept).

#include <mayfly/actors/fanout.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include <mayfly/actors/runtime.hpp>
#include "fake_sink.hpp"
#include "tests/support/small_runtime.hpp"

namespace {

using namespace mayfly;
using namespace std::chrono_literals;
using test::eventually;

// What one destination received, in order.
struct received {
  std::mutex mtx;
  std::vector<std::string> keys;     // mtx
  std::vector<int64_t> values;       // mtx
  std::vector<size_t> batch_sizes;   // mtx
  bool hashes_match = true;          // mtx: item.hash == key_hash(key)
  bool one_binary = true;            // mtx: every batch's source is pooled
  std::atomic<int> anonymous{0};
  std::atomic<int> batches{0};
};

caf::behavior collector(caf::event_based_actor* self,
                        std::shared_ptr<received> into) {
  return {[=](const key_batch& batch) {
    {
      std::lock_guard<std::mutex> guard{into->mtx};
      into->batch_sizes.push_back(batch.size);
      into->one_binary = into->one_binary && batch.source.pooled();
      for (auto& item : batch.view()) {
        auto key = batch.key(item);
        into->keys.emplace_back(key);
        into->values.push_back(item.value);
        into->hashes_match = into->hashes_match
                             && item.hash == key_hash(key);
      }
    }
    if (self->current_sender() == nullptr)
      ++into->anonymous;
    ++into->batches;
  }};
}

class Fanout : public ::testing::Test {
protected:
  void SetUp() override {
    auto made = runtime::make(test::small_runtime_config());
    ASSERT_TRUE(made) << made.error().message();
    rt = std::move(*made);
    for (int i = 0; i < 2; ++i) {
      seen.push_back(std::make_shared<received>());
      destinations.push_back(rt->spawn(collector, seen.back()));
    }
  }

  void TearDown() override {
    destinations.clear();
    test::stop_and_expect_balanced(rt);
  }

  // Dispatches `text` to a handler that forwards each '\n'-separated word
  // as a key, value = its position.
  void forward_words(const std::string& text) {
    auto& h = rt->add_handler("words", [this](handler_context& ctx,
                                              const datagram& d) {
      fanout out{ctx.arena(), destinations, d.payload};
      auto view = d.payload.view();
      int64_t pos = 0;
      while (!view.empty()) {
        auto nl = view.find('\n');
        out.add(view.substr(0, nl), pos++);
        if (nl == std::string_view::npos)
          break;
        view.remove_prefix(nl + 1);
      }
      messages = out.messages();
      out.flush();
      messages_after_flush = out.messages();
      refs_after_flush = d.payload.use_count();
    });
    rt->start();
    auto buf = rt->buffers().standard().try_acquire();
    ASSERT_TRUE(buf);
    std::memcpy(buf.data(), text.data(), text.size());
    datagram d{std::move(buf).freeze(text.size()),
               *udp_address::parse("127.0.0.1:5000"), &sink, 0};
    ASSERT_EQ(rt->dispatch(h, d), dispatch_status::spawned);
  }

  std::unique_ptr<runtime> rt;
  test::fake_sink sink;
  std::vector<std::shared_ptr<received>> seen;
  std::vector<caf::actor> destinations;
  std::atomic<size_t> messages{0};
  std::atomic<size_t> messages_after_flush{0};
  std::atomic<long> refs_after_flush{0};
};

TEST_F(Fanout, GroupsByKeyHashKeepsOrderAndSendsFullBatchesAtOnce) {
  // 300 keys (one standard slot), 3 occurrences each of 100 names.
  std::string text;
  std::vector<std::string> words;
  for (int i = 0; i < 300; ++i) {
    words.push_back("n" + std::to_string(i % 100));
    text += words.back() + "\n";
  }
  text.pop_back();
  forward_words(text);
  // Expected per destination, in order.
  std::vector<std::vector<std::pair<std::string, int64_t>>> want(2);
  for (size_t i = 0; i < words.size(); ++i)
    want[pick_destination(key_hash(words[i]), 2)].emplace_back(
      words[i], static_cast<int64_t>(i));
  auto batches_for = [](size_t n) {
    return static_cast<int>((n + key_batch::kCapacity - 1)
                            / key_batch::kCapacity);
  };
  ASSERT_TRUE(eventually([&] {
    return seen[0]->batches.load() == batches_for(want[0].size())
           && seen[1]->batches.load() == batches_for(want[1].size());
  }));
  EXPECT_TRUE(eventually([&] { return rt->in_flight() == 0; }));
  size_t full = want[0].size() / key_batch::kCapacity
                + want[1].size() / key_batch::kCapacity;
  EXPECT_EQ(messages.load(), full);
  EXPECT_EQ(messages_after_flush.load(),
            static_cast<size_t>(batches_for(want[0].size())
                                + batches_for(want[1].size())));
  for (int dest = 0; dest < 2; ++dest) {
    auto& r = *seen[dest];
    std::lock_guard<std::mutex> guard{r.mtx};
    ASSERT_EQ(r.keys.size(), want[dest].size());
    EXPECT_FALSE(want[dest].empty()); // 100 names split over 2
    for (size_t k = 0; k < r.keys.size(); ++k) {
      EXPECT_EQ(r.keys[k], want[dest][k].first);
      EXPECT_EQ(r.values[k], want[dest][k].second);
    }
    EXPECT_TRUE(r.hashes_match);
    EXPECT_TRUE(r.one_binary); // keys are ranges of the pool binary
    EXPECT_EQ(r.anonymous.load(), r.batches.load());
  }
}

TEST_F(Fanout, ABatchHoldsOneReferenceNotOnePerKey) {
  // 40 keys to at most 2 destinations: right after flush, the datagram is
  // referenced by the handler and at most one queued batch per
  // destination, not by 40 slices.
  std::string text;
  for (int i = 0; i < 40; ++i)
    text += "k" + std::to_string(i) + "\n";
  text.pop_back();
  forward_words(text);
  ASSERT_TRUE(eventually([&] {
    return seen[0]->batches.load() + seen[1]->batches.load() == 2;
  }));
  EXPECT_GE(refs_after_flush.load(), 1);
  EXPECT_LE(refs_after_flush.load(), 1 + 2 + 1); // + the runtime's own
}

TEST_F(Fanout, NothingAddedSendsNothing) {
  forward_words("");
  EXPECT_TRUE(eventually([&] { return rt->in_flight() == 0; }));
  EXPECT_EQ(messages_after_flush.load(), 0u);
  EXPECT_EQ(seen[0]->batches.load() + seen[1]->batches.load(), 0);
}

TEST(KeyTable, SumsPerKeyAndWraps) {
  key_table t{100};
  std::string a = "alpha", b = "beta";
  EXPECT_EQ(t.add(a, key_hash(a), 5), key_table::outcome::inserted);
  EXPECT_EQ(t.add(b, key_hash(b), -2), key_table::outcome::inserted);
  EXPECT_EQ(t.add(a, key_hash(a), 7), key_table::outcome::updated);
  EXPECT_EQ(*t.find("alpha"), 12);
  EXPECT_EQ(*t.find("beta"), -2);
  EXPECT_EQ(t.find("gamma"), nullptr);
  EXPECT_EQ(t.size(), 2u);
  std::string big = "big";
  t.add(big, key_hash(big), INT64_MAX);
  t.add(big, key_hash(big), 1);
  EXPECT_EQ(*t.find("big"), INT64_MIN);
}

TEST(KeyTable, KeysAreCopiedNotViewed) {
  key_table t{10};
  std::string name = "copied.name";
  t.add(name, key_hash(name), 1);
  name.assign("overwritten");
  EXPECT_NE(t.find("copied.name"), nullptr);
  EXPECT_EQ(t.find("overwritten"), nullptr);
}

TEST(KeyTable, GrowsAndFindsEveryKeyLongOnesToo) {
  key_table t{1'000'000};
  std::map<std::string, int64_t> want;
  for (int i = 0; i < 20000; ++i) {
    auto k = "key." + std::to_string(i);
    if (i % 1000 == 0)
      k += std::string(40000, 'x'); // longer than a quarter chunk
    want[k] = i;
    t.add(k, key_hash(k), i);
  }
  EXPECT_EQ(t.size(), want.size());
  for (auto& [k, v] : want) {
    auto* got = t.find(k);
    ASSERT_NE(got, nullptr) << k.substr(0, 20);
    EXPECT_EQ(*got, v);
  }
}

// Issue 18, item 2: a sender of ever-new names must not grow an aggregator
// without bound; past the bound new names are refused and counted, names
// already held still count.
TEST(KeyTable, BoundOnKeysRefusesNewNamesAndCountsThem) {
  key_table t{3};
  for (int i = 0; i < 10; ++i) {
    auto k = "n" + std::to_string(i);
    auto r = t.add(k, key_hash(k), 1);
    EXPECT_EQ(r, i < 3 ? key_table::outcome::inserted
                       : key_table::outcome::refused);
  }
  EXPECT_EQ(t.size(), 3u);
  EXPECT_EQ(t.refused(), 7u);
  auto before = t.memory_bytes();
  std::string held = "n1";
  EXPECT_EQ(t.add(held, key_hash(held), 4), key_table::outcome::updated);
  EXPECT_EQ(*t.find("n1"), 5);
  for (int i = 10; i < 10000; ++i) {
    auto k = "n" + std::to_string(i);
    t.add(k, key_hash(k), 1);
  }
  EXPECT_EQ(t.memory_bytes(), before); // nothing grew
  EXPECT_EQ(t.refused(), 7u + 9990u);
}

TEST(KeyHash, SameKeySameHashDifferentKeysDiffer) {
  EXPECT_EQ(key_hash("abc"), key_hash(std::string{"abc"}));
  EXPECT_NE(key_hash("abc"), key_hash("abd"));
  EXPECT_NE(key_hash(""), key_hash(std::string_view{"\0", 1}));
  EXPECT_NE(key_hash("abcdefgh1"), key_hash("abcdefgh2"));
  for (size_t n = 1; n < 5; ++n)
    for (uint64_t h : {key_hash("x"), key_hash("y"), key_hash("z")})
      EXPECT_LT(pick_destination(h, n), n);
}

} // namespace
