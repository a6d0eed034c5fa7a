/// @file
/// Cost per forwarded slice of the fan-out path (actors/fanout.hpp) next to
/// the one it replaced (actors/messages.hpp `slice_batch` + a node-based
/// map of detached keys), without the CAF message (one per batch, measured
/// in docs/benchmarks.md as part of the end-to-end figures).
///
/// Both take one ~1400-byte pooled datagram of 45 names (26 bytes each,
/// 10,000 names in all, as tools/bench/tally_flood.py sends), put every
/// name in a batch for one destination, and apply the batch to that
/// destination's table, then drop the batch. Per item:
/// - `BM_Forward_SliceBatch`: `slice_ref` (a refcount increment and the
///   slice accounting), `std::hash` twice (pick and lookup), an
///   `unordered_map` probe with a node per key; every key slice released;
///   32 items per batch (two batches per datagram).
/// - `BM_Forward_KeyBatch`: `key_hash` once, a 24-byte store, one probe of a
///   `key_table`; one reference per batch.
/// Items per second = forwarded slices per second on one thread.

#include <mayfly/actors/fanout.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <benchmark/benchmark.h>

#include <mayfly/actors/messages.hpp>
#include <mayfly/runtime/buffer_pool.hpp>
#include "bench_support.hpp"

namespace {

using namespace mayfly;

[[maybe_unused]] const bool process_prepared = mayfly::bench::prepare_process();

constexpr int kNames = 10000;
constexpr int kLines = 45;
constexpr int kDatagrams = (kNames + kLines - 1) / kLines;

std::unique_ptr<buffer_pool> make_pool() {
  slot_pool::options opts;
  opts.name = "bench";
  opts.slot_size = 2048;
  opts.capacity = 512;
  auto pool = buffer_pool::make(opts);
  if (!pool)
    std::abort();
  return std::move(*pool);
}

// The datagrams, and each line's name as a view into its datagram.
struct corpus {
  std::vector<slice> datagrams;
  std::vector<std::vector<std::string_view>> names;

  explicit corpus(buffer_pool& pool) {
    int n = 0;
    for (int d = 0; d < kDatagrams; ++d) {
      std::string text;
      std::vector<std::pair<size_t, size_t>> at;
      for (int l = 0; l < kLines; ++l) {
        auto id = std::to_string(n++ % kNames);
        std::string name = "flood.";
        name.append(26 - name.size() - id.size(), 'x');
        name += id;
        at.emplace_back(text.size(), name.size());
        text += name + ":1|c\n";
      }
      auto buf = pool.try_acquire();
      if (!buf)
        std::abort();
      std::memcpy(buf.data(), text.data(), text.size());
      datagrams.push_back(std::move(buf).freeze(text.size()));
      auto* base = reinterpret_cast<const char*>(datagrams.back().data());
      names.emplace_back();
      for (auto [off, len] : at)
        names.back().emplace_back(base + off, len);
    }
  }
};

struct view_hash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
  size_t operator()(const slice& s) const noexcept {
    return (*this)(s.view());
  }
};

struct view_equal {
  using is_transparent = void;
  static std::string_view v(std::string_view s) {
    return s;
  }
  static std::string_view v(const slice& s) {
    return s.view();
  }
  template <class A, class B>
  bool operator()(const A& a, const B& b) const noexcept {
    return v(a) == v(b);
  }
};

void BM_Forward_SliceBatch(benchmark::State& state) {
  auto pool = make_pool();
  {
    corpus c{*pool};
    std::unordered_map<slice, int64_t, view_hash, view_equal> totals;
    size_t d = 0, picked = 0;
    for (auto _ : state) {
      auto& dgram = c.datagrams[d];
      slice_batch batch;
      auto apply = [&] {
        for (auto& item : batch.view()) {
          auto i = totals.find(item.key.view());
          if (i != totals.end())
            i->second += item.value;
          else
            totals.emplace(item.key.detach(), item.value);
        }
        benchmark::DoNotOptimize(batch);
        batch = slice_batch{}; // the receiver drops the message
      };
      for (auto name : c.names[d]) {
        picked += std::hash<std::string_view>{}(name) % 2;
        batch.push(dgram.slice_ref(name), 1);
        if (batch.full())
          apply();
      }
      apply();
      d = (d + 1) % c.datagrams.size();
    }
    benchmark::DoNotOptimize(picked);
    state.SetItemsProcessed(state.iterations() * kLines);
  }
}
BENCHMARK(BM_Forward_SliceBatch);

void BM_Forward_KeyBatch(benchmark::State& state) {
  auto pool = make_pool();
  {
    corpus c{*pool};
    key_table totals;
    size_t d = 0, picked = 0;
    for (auto _ : state) {
      auto& dgram = c.datagrams[d];
      key_batch batch;
      batch.source = dgram;
      for (auto name : c.names[d]) {
        auto h = key_hash(name);
        picked += pick_destination(h, 2);
        batch.push(name, h, 1);
      }
      for (auto& item : batch.view())
        totals.add(batch.key(item), item.hash, item.value);
      benchmark::DoNotOptimize(batch);
      d = (d + 1) % c.datagrams.size();
    }
    benchmark::DoNotOptimize(picked);
    state.SetItemsProcessed(state.iterations() * kLines);
  }
}
BENCHMARK(BM_Forward_KeyBatch);

} // namespace

BENCHMARK_MAIN();
