// batcher on a real runtime: items grouped per destination, a message per
// full batch plus one per destination at flush, order kept, no sender
// attached (a queued batch does not keep its handler alive), and the keys
// arrive as zero-copy slices of the datagram.

#include <mayfly/actors/messages.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <caf/all.hpp>

#include <mayfly/actors/runtime.hpp>
#include "fake_sink.hpp"
#include "tests/support/small_runtime.hpp"

namespace {

using namespace mayfly;
using namespace std::chrono_literals;

// What one destination received, in order.
struct received {
  std::mutex mtx;
  std::vector<std::string> keys;       // mtx
  std::vector<int64_t> values;         // mtx
  std::vector<size_t> batch_sizes;     // mtx
  bool same_binary = true;             // mtx: every key a slice of the datagram
  std::atomic<int> anonymous{0};       // batches without a sender
  std::atomic<int> batches{0};
};

caf::behavior collector(caf::event_based_actor* self,
                        std::shared_ptr<received> into) {
  return {[=](const slice_batch& batch) {
    {
      std::lock_guard<std::mutex> guard{into->mtx};
      into->batch_sizes.push_back(batch.size);
      for (auto& item : batch.view()) {
        into->keys.emplace_back(item.key.view());
        into->values.push_back(item.value);
        into->same_binary = into->same_binary && item.key.pooled();
      }
    }
    if (self->current_sender() == nullptr)
      ++into->anonymous;
    ++into->batches;
  }};
}

using test::eventually;

class Batcher : public ::testing::Test {
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

  // Dispatches `text` to a handler that forwards each byte as a key (to
  // destination 0 for even positions, 1 for odd), value = position.
  void forward_bytes(const std::string& text) {
    auto& h = rt->add_handler("bytes", [this](handler_context& ctx,
                                              const datagram& d) {
      batcher out{ctx.arena(), destinations};
      auto view = d.payload.view();
      for (size_t i = 0; i < view.size(); ++i)
        out.add(i % 2, d.payload.slice_ref(view.substr(i, 1)),
                static_cast<int64_t>(i));
      messages = out.messages(); // before the destructor's flush
      out.flush();
      messages_after_flush = out.messages();
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
};

TEST_F(Batcher, GroupsPerDestinationAndSendsFullBatchesAtOnce) {
  // 100 items: 50 per destination = one full batch (32) + 18 at flush.
  std::string text;
  for (int i = 0; i < 100; ++i)
    text += static_cast<char>('a' + i % 26);
  forward_bytes(text);
  ASSERT_TRUE(eventually([&] {
    return seen[0]->batches.load() == 2 && seen[1]->batches.load() == 2;
  }));
  EXPECT_TRUE(eventually([&] { return rt->in_flight() == 0; }));
  EXPECT_EQ(messages.load(), 2u);             // the two full batches
  EXPECT_EQ(messages_after_flush.load(), 4u); // + one per destination
  for (int dest = 0; dest < 2; ++dest) {
    auto& r = *seen[dest];
    std::lock_guard<std::mutex> guard{r.mtx};
    EXPECT_EQ(r.batch_sizes, (std::vector<size_t>{32, 18}));
    ASSERT_EQ(r.keys.size(), 50u);
    for (size_t k = 0; k < 50; ++k) {
      auto pos = 2 * k + static_cast<size_t>(dest);
      EXPECT_EQ(r.values[k], static_cast<int64_t>(pos)); // in order
      EXPECT_EQ(r.keys[k], text.substr(pos, 1));
    }
    EXPECT_TRUE(r.same_binary); // keys are slices of the pool binary
    EXPECT_EQ(r.anonymous.load(), 2); // no sender: cannot pin the handler
  }
}

TEST_F(Batcher, NothingAddedSendsNothing) {
  forward_bytes("");
  EXPECT_TRUE(eventually([&] { return rt->in_flight() == 0; }));
  EXPECT_EQ(messages_after_flush.load(), 0u);
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(seen[0]->batches.load() + seen[1]->batches.load(), 0);
}

} // namespace
