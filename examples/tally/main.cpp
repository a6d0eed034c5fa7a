// mayfly-tally: the tally protocol of shared/WORKLOADS.md (port 9001), a
// statsd-like counter service.
//
// What it shows:
// - Fan-out: a handler actor per datagram parses every line into its arena
//   and forwards (NAME, VALUE) to one of S long-lived aggregator actors
//   chosen by a hash of NAME. NAME travels as a zero-copy slice of the
//   received datagram; a `mayfly::batcher` groups the items of a datagram
//   per aggregator into one message each.
// - Pinning: an aggregator that stored those slices as keys would keep every
//   datagram that introduced a name alive forever (Erlang's classic binary
//   leak). It stores `key.detach()` instead: a copy of just the name. Run
//   with --pin to see the difference in /stats: pools.standard.binaries.live
//   and pinned_bytes grow with every new name.
// - Ordering: a query is answered only after every ingest datagram received
//   before it has been aggregated (a barrier actor waits until no ingest
//   handler is in flight, then the query asks the aggregators: their
//   mailboxes are FIFO, so earlier batches are counted first).

#include <caf/all.hpp>

#include <cstdio>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "actors/handler.hpp"
#include "actors/messages.hpp"
#include "actors/runtime.hpp"
#include "examples/common/service.hpp"
#include "examples/tally/tally_protocol.hpp"
#include "runtime/counters.hpp"

namespace {

using total_atom = caf::atom_constant<caf::atom("total")>;
using summary_atom = caf::atom_constant<caf::atom("summary")>;
using wait_atom = caf::atom_constant<caf::atom("wait")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;

// Counters shared by all handlers: malformed lines, and queries running.
struct shared_state {
  mayfly::sharded_counters<3> counters;
  enum { errors, queries_started, queries_done };
  std::vector<caf::actor> aggregators;
  caf::actor barrier;
  mayfly::handler_type* handler = nullptr;
  bool pin = false; // --pin: keep received slices as keys (the leak)

  // Ingest handlers in flight: all handlers minus running queries.
  bool ingest_quiet() const {
    auto queries = counters.sum(queries_started) - counters.sum(queries_done);
    return handler->in_flight() - queries <= 0;
  }
};

// -- aggregator ---------------------------------------------------------------------

// Hash and equality that look up detached keys by string_view (C++20
// heterogeneous lookup): the hot path never builds a key to search.
struct key_hash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
  size_t operator()(const mayfly::slice& s) const noexcept {
    return (*this)(s.view());
  }
};

struct key_equal {
  using is_transparent = void;
  template <class A, class B>
  bool operator()(const A& a, const B& b) const noexcept {
    return view(a) == view(b);
  }
  static std::string_view view(std::string_view s) {
    return s;
  }
  static std::string_view view(const mayfly::slice& s) {
    return s.view();
  }
};

// --8<-- [start:aggregator]
struct aggregator_state {
  std::unordered_map<mayfly::slice, int64_t, key_hash, key_equal> totals;
  int64_t sum = 0;
};

caf::behavior aggregator(caf::stateful_actor<aggregator_state>* self,
                         bool pin, uint32_t holder) {
  return {
    [=](const mayfly::slice_batch& batch) {
      auto& st = self->state;
      for (auto& item : batch.view()) {
        auto i = st.totals.find(item.key.view());
        if (i != st.totals.end()) {
          i->second += item.value; // wraps like the protocol allows
        } else {
          // Detach: store a copy of the name, not a view that would pin
          // the whole datagram for the life of the aggregator.
          if (pin)
            item.key.mark_holder(holder); // the pinning report names us
          st.totals.emplace(pin ? item.key : item.key.detach(), item.value);
        }
        st.sum = static_cast<int64_t>(static_cast<uint64_t>(st.sum)
                                      + static_cast<uint64_t>(item.value));
      }
    },
    [=](total_atom, const std::string& name) -> int64_t {
      auto& totals = self->state.totals;
      auto i = totals.find(std::string_view{name});
      return i == totals.end() ? 0 : i->second;
    },
    [=](summary_atom) {
      return caf::make_message(static_cast<int64_t>(self->state.totals.size()),
                               self->state.sum);
    },
  };
}
// --8<-- [end:aggregator]

// -- barrier ------------------------------------------------------------------------

// Answers `wait` once no ingest handler is in flight (or after 2 s).
struct barrier_state {
  std::vector<std::pair<caf::response_promise, caf::actor_clock::time_point>>
    waiting;
};

caf::behavior barrier(caf::stateful_actor<barrier_state>* self,
                      std::shared_ptr<shared_state> shared) {
  using namespace std::chrono_literals;
  auto check = [=] {
    auto& waiting = self->state.waiting;
    auto quiet = shared->ingest_quiet();
    auto now = self->clock().now();
    for (auto i = waiting.begin(); i != waiting.end();) {
      if (quiet || now - i->second > 2s) {
        i->first.deliver(quiet);
        i = waiting.erase(i);
      } else {
        ++i;
      }
    }
    if (!waiting.empty())
      self->delayed_send(self, 100us, tick_atom::value);
  };
  return {
    [=](wait_atom) {
      auto& waiting = self->state.waiting;
      waiting.emplace_back(self->make_response_promise(), self->clock().now());
      if (waiting.size() == 1)
        check();
    },
    [=](tick_atom) { check(); },
  };
}

// -- handler ------------------------------------------------------------------------

size_t pick(std::string_view name, size_t n) {
  return std::hash<std::string_view>{}(name) % n;
}

// Marks a query finished however its handler ends (made in the arena: its
// destructor runs when the arena is reset).
struct query_guard {
  explicit query_guard(shared_state* s) : shared(s) {
  }
  query_guard(const query_guard&) = delete;
  shared_state* shared;
  ~query_guard() {
    shared->counters.add(shared_state::queries_done);
  }
};

void ingest(mayfly::handler_context& ctx, const mayfly::datagram& d,
            shared_state& shared) {
  // --8<-- [start:ingest]
  mayfly::batcher out{ctx.self(), ctx.arena(), shared.aggregators};
  int64_t errors = 0;
  tally::for_each_line(d.payload.view(), [&](std::string_view text) {
    tally::line l;
    if (!tally::parse_line(text, l)) {
      ++errors;
      return;
    }
    // NAME as a slice of the datagram: zero-copy, keeps it alive.
    out.add(pick(l.name, shared.aggregators.size()),
            d.payload.slice_ref(l.name), l.value);
  });
  out.flush();
  // --8<-- [end:ingest]
  if (errors > 0)
    shared.counters.add(shared_state::errors, errors);
}

void query(mayfly::handler_context& ctx, tally::query_kind kind,
           std::string_view name, std::shared_ptr<shared_state> shared) {
  using namespace std::chrono_literals;
  shared->counters.add(shared_state::queries_started);
  ctx.arena().make<query_guard>(shared.get());
  // The name outlives this call: the handler waits for replies.
  auto stored = ctx.arena().copy(name);
  auto* self = ctx.self();
  self->request(shared->barrier, 5s, wait_atom::value)
    .then([&ctx, self, kind, stored, shared](bool) {
      if (kind == tally::query_kind::name) {
        auto& agg = shared->aggregators[pick(stored, shared->aggregators.size())];
        self->request(agg, 5s, total_atom::value, std::string{stored})
          .then([&ctx, stored](int64_t total) {
            auto* buf = ctx.arena().make_array<char>(stored.size() + 24);
            auto n = std::snprintf(buf, stored.size() + 24, "%.*s:%lld\n",
                                   static_cast<int>(stored.size()),
                                   stored.data(),
                                   static_cast<long long>(total));
            ctx.reply(std::string_view{buf, static_cast<size_t>(n)});
          });
        return;
      }
      // ?*: ask every aggregator, answer when the last one replied.
      struct acc {
        size_t pending;
        int64_t keys = 0;
        uint64_t sum = 0;
      };
      auto* totals = ctx.arena().make<acc>(acc{shared->aggregators.size()});
      for (auto& agg : shared->aggregators)
        self->request(agg, 5s, summary_atom::value)
          .then([&ctx, totals, shared](int64_t keys, int64_t sum) {
            totals->keys += keys;
            totals->sum += static_cast<uint64_t>(sum);
            if (--totals->pending > 0)
              return;
            char buf[96];
            auto n = std::snprintf(
              buf, sizeof(buf), "keys:%lld sum:%lld errors:%lld\n",
              static_cast<long long>(totals->keys),
              static_cast<long long>(static_cast<int64_t>(totals->sum)),
              static_cast<long long>(
                shared->counters.sum(shared_state::errors)));
            ctx.reply(std::string_view{buf, static_cast<size_t>(n)});
          });
    });
}

} // namespace

int main(int argc, char** argv) {
  std::string aggregators, pin;
  auto opts = example::parse_options(
    argc, argv,
    "mayfly-tally: statsd-like counters; '?NAME' and '?*' query them.", 9001,
    {{"aggregators", "number of aggregator actors (default: workers)",
      &aggregators},
     {"pin", "1: store received slices as keys (shows pinning)", &pin}});
  auto shared = std::make_shared<shared_state>();
  shared->pin = pin == "1";
  auto setup = [&](mayfly::runtime& rt) -> mayfly::handler_type& {
    size_t n = aggregators.empty() ? rt.config().workers
                                   : std::stoul(aggregators);
    auto holder = rt.holder_tag("tally aggregator");
    for (size_t i = 0; i < std::max<size_t>(n, 1); ++i)
      shared->aggregators.push_back(rt.spawn(aggregator, shared->pin, holder));
    shared->barrier = rt.spawn(barrier, shared);
    auto& h = rt.add_handler("tally", [shared](mayfly::handler_context& ctx,
                                               const mayfly::datagram& d) {
      std::string_view name;
      auto kind = tally::parse_query(d.payload.view(), name);
      switch (kind) {
        case tally::query_kind::none:
          ingest(ctx, d, *shared);
          break;
        case tally::query_kind::malformed:
          shared->counters.add(shared_state::errors);
          break;
        default:
          query(ctx, kind, name, shared);
      }
    });
    shared->handler = &h;
    return h;
  };
  return example::serve(opts, setup, {}, [&] {
    shared->aggregators.clear(); // no handle may outlive the actor system
    shared->barrier = nullptr;
  });
}
