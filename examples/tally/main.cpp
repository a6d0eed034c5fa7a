// mayfly-tally: the tally protocol of docs/workloads.md (port 9001), a
// statsd-like counter service.
//
// What it shows:
// - Fan-out: a handler actor per datagram parses every line into its arena
//   and forwards (NAME, VALUE) to one of S long-lived aggregator actors
//   chosen by a hash of NAME. NAME travels zero-copy, as a byte range of
//   the received datagram: a `mayfly::fanout` groups the items of a
//   datagram per aggregator into one `key_batch` each, which holds one
//   reference to the datagram for all its names and carries each name's
//   hash, so the aggregator's flat `key_table` does not hash again.
// - Pinning: an aggregator that stored slices of the datagram as keys would
//   keep every datagram that introduced a name alive forever (Erlang's
//   classic binary leak). Its `key_table` copies the name instead, and the
//   aggregators are marked long-lived (`runtime::mark_long_lived`), so the
//   runtime's detach policy copies small batches of names out of their
//   datagrams when they are sent (`runtime.detach` in the configuration).
//   Run with --pin 1 (the aggregators also keep each new name as a slice)
//   to see either: with the policy, /stats "detach" counts the copies and
//   the datagrams' slots go back at once; with "detach": {"enabled": false}
//   pools.standard.binaries.live and pinned_bytes grow with every new name
//   and /stats "holders" names the aggregators.
// - Bounded state: an aggregator holds at most --max-keys names (default
//   250,000 each); a line with a new name beyond that is refused and counted
//   (`lines_refused.key_limit` in /stats "tally"), the rest of its datagram
//   is still processed.
// - Ordering: a query is answered only after every ingest datagram received
//   before it has been aggregated: `ctx.after_earlier` (the library's
//   barrier, actors/barrier.hpp) waits until every handler admitted before
//   the query has exited, then the query asks the aggregators: their
//   mailboxes are FIFO, so earlier batches are counted first.
// - Supervision: the aggregators run under a `mayfly::spawn_supervisor`
//   (one_for_one, at most 5 restarts in 10 s). One that dies is restarted
//   with empty state; the totals it held are counted as lost
//   (`lines_lost_with_state` in /stats "tally"); past the intensity limit
//   the service stops with exit code 4.
// - Distribution (docs/design/distribution.md): `--publish PORT` makes this
//   process an aggregator node that publishes its supervisor over CAF's
//   middleman; `--aggregators HOST:PORT` makes it an ingest node that
//   forwards its batches to that node's aggregators (slices are serialized
//   and land in the other node's pools). The ingest node reconnects with
//   backoff when the connection drops and counts every line it could not
//   route. Nodes authenticate each other with TLS (`--tls-cert`,
//   `--tls-key`, `--tls-ca`; examples/tally/distribution.hpp): BASP parses
//   no byte from a peer without a certificate from the operator's CA.

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <mayfly/actors/config.hpp>
#include <mayfly/actors/fanout.hpp>
#include <mayfly/actors/handler.hpp>
#include <mayfly/actors/messages.hpp>
#include <mayfly/actors/runtime.hpp>
#include <mayfly/actors/supervisor.hpp>
#include <mayfly/net/serve.hpp>
#include "examples/tally/basp_guard.hpp"
#include "examples/tally/tls_watch.hpp"
#include "examples/tally/distribution.hpp"
#include "examples/tally/tally_protocol.hpp"
#include <mayfly/runtime/config.hpp>
#include <mayfly/runtime/counters.hpp>
#include <mayfly/runtime/parse.hpp>

namespace {

using total_atom = caf::atom_constant<caf::atom("total")>;
using summary_atom = caf::atom_constant<caf::atom("summary")>;

using members_ptr = mayfly::supervised_group::members_ptr;

// The aggregators of the other node, as the ingest node sees them: one
// table per connection (immutable but for its counter).
struct remote_route {
  std::vector<caf::actor> members; // empty: not connected
  uint64_t connection = 0;         // 1, 2, ...; 0 before the first
  // Lines sent over this connection (shared by its tables: a table is
  // replaced when a remote aggregator restarts, the connection stays).
  std::shared_ptr<std::atomic<int64_t>> forwarded
    = std::make_shared<std::atomic<int64_t>>(0);
};

// State shared by all handlers and long-lived actors of the service.
struct shared_state {
  mayfly::sharded_counters<6> counters;
  enum {
    errors,          // malformed lines and queries
    queries_started,
    queries_done,
    queries_failed,  // no aggregator reachable, or it did not answer
    forwarded,       // lines sent to an aggregator (local or remote)
    unrouted,        // lines dropped: no aggregator to send them to
  };
  mayfly::handler_type* handler = nullptr;
  bool pin = false; // --pin: keep received slices as keys (the leak)

  // Local aggregators (standalone and aggregator node).
  std::shared_ptr<mayfly::supervised_group> group;
  std::unique_ptr<std::atomic<int64_t>[]> applied; // lines, per slot
  std::unique_ptr<std::atomic<int64_t>[]> refused; // key limit, per slot
  size_t max_keys = 0; // per aggregator
  size_t slots = 0;
  std::atomic<int64_t> lost_with_state{0}; // lines of aggregators that died
  std::atomic<bool> gave_up{false};

  bool distributed = false; // --publish or --aggregators HOST:PORT

  // Ingest node: where the remote aggregators are.
  bool remote = false;
  std::atomic<std::shared_ptr<const remote_route>> route{
    std::make_shared<const remote_route>()};
  std::atomic<int64_t> connects{0}, disconnects{0}, connect_failures{0};

  // The aggregators to send to now (empty when none is reachable).
  members_ptr members() const {
    if (!remote)
      return group->members();
    auto r = route.load(std::memory_order_acquire);
    return {r, &r->members}; // aliasing: keeps the table alive
  }

  nlohmann::json stats() const {
    int64_t applied_now = 0, refused_now = 0;
    for (size_t i = 0; i < slots; ++i) {
      applied_now += applied[i].load(std::memory_order_relaxed);
      refused_now += refused[i].load(std::memory_order_relaxed);
    }
    nlohmann::json doc = {
      {"errors", counters.sum(errors)},
      {"lines_forwarded", counters.sum(forwarded)},
      {"lines_unrouted", counters.sum(unrouted)},
      {"queries_failed", counters.sum(queries_failed)},
    };
    if (distributed) // BASP headers this process received (basp_guard.hpp)
      doc["basp"] = {
        {"headers_checked", tally::basp_headers_checked()},
        {"headers_rejected", tally::basp_headers_rejected()},
      };
    if (distributed) // TLS handshakes, both directions (tls_watch.hpp)
      doc["tls"] = {
        {"handshakes_completed", tally::tls_handshakes_completed()},
        {"handshakes_failed", tally::tls_handshakes_failed()},
      };
    if (remote) {
      auto r = route.load();
      doc["remote"] = {
        {"connected", !r->members.empty()},
        {"connection", r->connection},
        {"aggregators", r->members.size()},
        {"lines_forwarded_this_connection", r->forwarded->load()},
        {"connects", connects.load()},
        {"disconnects", disconnects.load()},
        {"connect_failures", connect_failures.load()},
      };
    } else {
      doc["lines_applied"] = applied_now;
      doc["lines_refused"] = {{"key_limit", refused_now}};
      doc["max_keys_per_aggregator"] = max_keys;
      doc["lines_lost_with_state"] = lost_with_state.load();
      doc["aggregators"] = group->stats();
    }
    return doc;
  }
};

// What shared_state::stats() renders under "/tally" (registered with it, so
// that /metrics types and explains every figure). Which keys appear depends
// on the role: "basp" and "tls" when distributed, "remote" on an ingest
// node, the local aggregation figures otherwise.
constexpr mayfly::metric_info kTallyMetrics[] = {
  {"errors", mayfly::metric_kind::counter, "", "malformed lines and queries"},
  {"lines_forwarded", mayfly::metric_kind::counter, "",
   "lines sent to an aggregator (local or remote)"},
  {"lines_unrouted", mayfly::metric_kind::counter, "",
   "lines dropped: no aggregator to send them to"},
  {"queries_failed", mayfly::metric_kind::counter, "",
   "queries with no aggregator reachable, or it did not answer"},
  {"basp.headers_checked", mayfly::metric_kind::counter, "",
   "BASP headers this process received and checked (basp_guard.hpp)"},
  {"basp.headers_rejected", mayfly::metric_kind::counter, "",
   "... of those, rejected"},
  {"tls.handshakes_completed", mayfly::metric_kind::counter, "",
   "TLS handshakes completed, both directions (tls_watch.hpp)"},
  {"tls.handshakes_failed", mayfly::metric_kind::counter, "",
   "... handshakes that failed"},
  {"remote.connected", mayfly::metric_kind::flag, "",
   "an aggregator node is connected"},
  {"remote.connection", mayfly::metric_kind::gauge, "",
   "number of the current connection (1 for the first)"},
  {"remote.aggregators", mayfly::metric_kind::gauge, "",
   "aggregators of the connected node"},
  {"remote.lines_forwarded_this_connection", mayfly::metric_kind::counter,
   "", "lines forwarded over the current connection"},
  {"remote.connects", mayfly::metric_kind::counter, "",
   "connections to the aggregator node made"},
  {"remote.disconnects", mayfly::metric_kind::counter, "",
   "connections to the aggregator node lost"},
  {"remote.connect_failures", mayfly::metric_kind::counter, "",
   "connection attempts that failed"},
  {"lines_applied", mayfly::metric_kind::counter, "",
   "lines the aggregators applied"},
  {"lines_refused.key_limit", mayfly::metric_kind::counter, "",
   "lines refused: the aggregator's key limit was reached"},
  {"max_keys_per_aggregator", mayfly::metric_kind::config, "",
   "most keys one aggregator keeps"},
  {"lines_lost_with_state", mayfly::metric_kind::counter, "",
   "lines of aggregators that died (their state was lost)"},
  {"aggregators.children", mayfly::metric_kind::gauge, "",
   "aggregators alive now"},
  {"aggregators.deaths", mayfly::metric_kind::counter, "",
   "aggregators that died"},
  {"aggregators.restarts", mayfly::metric_kind::counter, "",
   "aggregators restarted by the supervisor"},
  {"aggregators.gave_up", mayfly::metric_kind::flag, "",
   "the supervisor gave up (restart intensity exceeded)"},
};

constexpr mayfly::metric_section kTallySection{"tally", "/tally",
                                               kTallyMetrics};

// -- aggregator ---------------------------------------------------------------------

// --8<-- [start:aggregator]
struct aggregator_state {
  mayfly::key_table totals;
  int64_t sum = 0;
  std::vector<mayfly::slice> pinned; // --pin only: the leak, on purpose
};

// Where an aggregator counts: lines applied (all lines of its batches)
// and lines refused because their name was new and the table full.
struct aggregator_counters {
  std::atomic<int64_t>* applied;
  std::atomic<int64_t>* refused;
};

caf::behavior aggregator(caf::stateful_actor<aggregator_state>* self,
                         bool pin, size_t max_keys,
                         aggregator_counters counters) {
  self->state.totals = mayfly::key_table{max_keys};
  return {
    [=](const mayfly::key_batch& batch) {
      auto& st = self->state;
      int64_t refused = 0;
      uint64_t sum = static_cast<uint64_t>(st.sum);
      for (auto& item : batch.view()) {
        // The hash came with the item: one probe, no rehash.
        auto done = st.totals.add(batch.key(item), item.hash, item.value);
        if (done == mayfly::key_table::outcome::refused) {
          ++refused;
          continue;
        }
        sum += static_cast<uint64_t>(item.value); // wraps like the protocol
        if (pin && done == mayfly::key_table::outcome::inserted) {
          // --pin: also keep the name as a slice of the batch's binary: the
          // whole datagram, unless the detach policy sent a copy of the
          // names (the top-holders report names us either way).
          st.pinned.push_back(
            batch.source.sub(item.offset, item.offset + item.length));
        }
      }
      st.sum = static_cast<int64_t>(sum);
      counters.applied->fetch_add(batch.size - refused,
                                  std::memory_order_relaxed);
      if (refused > 0)
        counters.refused->fetch_add(refused, std::memory_order_relaxed);
    },
    [=](total_atom, const std::string& name) -> int64_t {
      auto* total = self->state.totals.find(name);
      return total == nullptr ? 0 : *total;
    },
    [=](summary_atom) {
      return caf::make_message(static_cast<int64_t>(self->state.totals.size()),
                               self->state.sum);
    },
  };
}
// --8<-- [end:aggregator]

// -- handler ------------------------------------------------------------------------

size_t pick(std::string_view name, size_t n) {
  return mayfly::pick_destination(mayfly::key_hash(name), n);
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

// Parses `d` and forwards its lines to `aggregators`; returns the number of
// lines forwarded, or counts them unrouted when there is no aggregator.
int64_t forward_lines(mayfly::handler_context& ctx, const mayfly::datagram& d,
                      shared_state& shared,
                      const std::vector<caf::actor>& aggregators) {
  // --8<-- [start:ingest]
  mayfly::fanout out{ctx, aggregators, d.payload}; // applies rt's policy
  int64_t errors = 0, lines = 0;
  tally::for_each_line(d.payload.view(), [&](std::string_view text) {
    tally::line l;
    if (!tally::parse_line(text, l)) {
      ++errors;
      return;
    }
    ++lines;
    if (aggregators.empty())
      return; // counted as unrouted below
    // NAME as a range of the datagram: zero-copy; the batch holds one
    // reference to the datagram for all its names.
    out.add(l.name, l.value);
  });
  out.flush();
  // --8<-- [end:ingest]
  if (errors > 0)
    shared.counters.add(shared_state::errors, errors);
  if (lines > 0)
    shared.counters.add(aggregators.empty() ? shared_state::unrouted
                                            : shared_state::forwarded,
                        lines);
  return aggregators.empty() ? 0 : lines;
}

void ingest(mayfly::handler_context& ctx, const mayfly::datagram& d,
            shared_state& shared) {
  if (!shared.remote) {
    auto members = shared.group->members();
    forward_lines(ctx, d, shared, *members);
    return;
  }
  // Count per connection, so that a lost connection says how many lines
  // went over it.
  auto route = shared.route.load(std::memory_order_acquire);
  if (auto n = forward_lines(ctx, d, shared, route->members); n > 0)
    route->forwarded->fetch_add(n, std::memory_order_relaxed);
}

// Answers a query with a copy of its own (a dedicated binary freed once
// sent), not through the endpoint's packed send buffer: a packed buffer
// stays held, partly filled, by the thread that replied, so an idle server
// that answered a query would hold a standard slot and a binary that only
// ages (issue 18, item 7). Queries are rare: one allocation each is cheap.
void reply_detached(mayfly::handler_context& ctx, const char* text, size_t n) {
  ctx.reply(mayfly::slice::copy_of(text, n));
}

// A query waits for the datagrams before it (`after_earlier`) at most 5 s;
// past that it fails, counted as the handler type's `ask_errors`, and gets
// no reply.
mayfly::handler_options query_options() {
  mayfly::handler_options options;
  options.ask_timeout = std::chrono::seconds(5);
  return options;
}

void query(mayfly::handler_context& ctx, tally::query_kind kind,
           std::string_view name, std::shared_ptr<shared_state> shared) {
  using namespace std::chrono_literals;
  shared->counters.add(shared_state::queries_started);
  ctx.arena().make<query_guard>(shared.get());
  // The name outlives this call: the handler waits for replies.
  auto stored = ctx.arena().copy(name);
  auto* self = ctx.self();
  // No aggregator answers (an ingest node between connections, or one that
  // did not reply in time): no reply, counted.
  auto failed = [shared](const caf::error&) {
    shared->counters.add(shared_state::queries_failed);
  };
  // --8<-- [start:barrier]
  // After every datagram admitted before this one was handled (on any
  // receive thread): their batches are then in the aggregators' mailboxes
  // ahead of the requests below.
  ctx.after_earlier([&ctx, self, kind, stored, shared, failed] {
    auto members = shared->members();
    if (members->empty()) {
      shared->counters.add(shared_state::queries_failed);
      return;
    }
    if (kind == tally::query_kind::name) {
      auto& agg = (*members)[pick(stored, members->size())];
      self->request(agg, 5s, total_atom::value, std::string{stored})
        .then([&ctx, stored](int64_t total) {
          auto* buf = ctx.arena().make_array<char>(stored.size() + 24);
          auto n = std::snprintf(buf, stored.size() + 24, "%.*s:%lld\n",
                                 static_cast<int>(stored.size()),
                                 stored.data(),
                                 static_cast<long long>(total));
          reply_detached(ctx, buf, static_cast<size_t>(n));
        }, failed);
      return;
    }
    // ?*: ask every aggregator, answer when the last one replied.
  // --8<-- [end:barrier]
    struct acc {
      size_t pending;
      int64_t keys = 0;
      uint64_t sum = 0;
    };
    auto* totals = ctx.arena().make<acc>(acc{members->size()});
    for (auto& agg : *members)
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
          reply_detached(ctx, buf, static_cast<size_t>(n));
        }, failed);
  });
}

// -- remote aggregators (ingest node) ---------------------------------------------

// Connects to the aggregator node's published supervisor, asks it for the
// aggregators, and installs them as the route. A lost connection is
// counted, logged, routed to nothing (lines counted as unrouted) and
// retried with exponential backoff; a single remote aggregator that died
// (and was restarted there) makes it ask for the table again.
struct connector_state {
  caf::actor supervisor; // the other node's, while connected
  uint32_t backoff_ms = 0;
};

constexpr uint32_t kMinBackoffMs = 100;
constexpr uint32_t kMaxBackoffMs = 5000;

caf::behavior connector(caf::stateful_actor<connector_state>* self,
                        std::shared_ptr<shared_state> shared, std::string host,
                        uint16_t port, caf::io::middleman_actor mm) {
  using namespace std::chrono_literals;
  auto where = host + ":" + std::to_string(port);
  auto retry_later = [=](const std::string& why) {
    auto& st = self->state;
    shared->connect_failures.fetch_add(1);
    std::fprintf(stderr,
                 "mayfly-tally: cannot reach the aggregator node at %s: %s; "
                 "retrying in %u ms\n",
                 where.c_str(), why.c_str(), st.backoff_ms);
    self->delayed_send(self, std::chrono::milliseconds(st.backoff_ms),
                       caf::connect_atom::value);
    st.backoff_ms = std::min(st.backoff_ms * 2, kMaxBackoffMs);
  };
  // Installs a new table; a new connection gets a new line counter.
  auto install = [=](std::vector<caf::actor> members, bool new_connection) {
    auto old = shared->route.load();
    auto next = std::make_shared<remote_route>();
    next->members = std::move(members);
    if (new_connection) {
      next->connection = old->connection + 1;
    } else {
      next->connection = old->connection;
      next->forwarded = old->forwarded;
    }
    for (auto& m : old->members)
      self->demonitor(m);
    // (A member that is already dead yields a down_msg at once, which asks
    // for the table again: a stale table does not stay.)
    for (auto& m : next->members)
      self->monitor(m);
    shared->route.store(std::move(next));
  };
  // Asks the other node's supervisor for its aggregators: to complete a
  // new connection, or to refresh the table after one of them died.
  auto fetch = [=](bool new_connection) {
    self->request(self->state.supervisor, 5s, caf::get_atom::value)
      .then(
        [=](std::vector<caf::actor>& members) {
          if (!new_connection) {
            if (self->state.supervisor && !members.empty())
              install(std::move(members), false);
            return;
          }
          if (!self->state.supervisor || members.empty()) {
            self->state.supervisor = nullptr;
            retry_later(members.empty() ? "it has no aggregators"
                                        : "the connection broke");
            return;
          }
          auto n = members.size();
          install(std::move(members), true);
          shared->connects.fetch_add(1);
          self->state.backoff_ms = kMinBackoffMs;
          std::fprintf(stderr,
                       "mayfly-tally: connected to the aggregator node at %s "
                       "(connection %llu, %zu aggregators)\n",
                       where.c_str(),
                       static_cast<unsigned long long>(
                         shared->route.load()->connection),
                       n);
        },
        [=](caf::error& err) {
          if (!new_connection)
            return; // a lost node shows up as a down_msg
          if (self->state.supervisor)
            self->demonitor(self->state.supervisor);
          self->state.supervisor = nullptr;
          retry_later(self->system().render(err));
        });
  };
  auto lost = [=](const caf::error& reason) {
    auto old = shared->route.load();
    self->demonitor(self->state.supervisor);
    self->state.supervisor = nullptr;
    if (old->members.empty())
      return; // still connecting: the pending request retries
    for (auto& m : old->members)
      self->demonitor(m);
    auto next = std::make_shared<remote_route>();
    next->connection = old->connection;
    next->forwarded = old->forwarded;
    shared->route.store(std::move(next));
    shared->disconnects.fetch_add(1);
    std::fprintf(stderr,
                 "mayfly-tally: lost the aggregator node at %s (connection "
                 "%llu, %s) after forwarding %lld lines over it; lines are "
                 "counted as unrouted until it is back\n",
                 where.c_str(),
                 static_cast<unsigned long long>(old->connection),
                 self->system().render(reason).c_str(),
                 static_cast<long long>(old->forwarded->load()));
    self->state.backoff_ms = kMinBackoffMs;
    self->send(self, caf::connect_atom::value);
  };
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    if (!st.supervisor)
      return; // from a connection already given up
    if (dm.source == st.supervisor.address()
        || dm.reason == caf::exit_reason::remote_link_unreachable) {
      lost(dm.reason);
      return;
    }
    // One remote aggregator died: its supervisor restarts it. Until the
    // new table arrives, lines for that slot are lost with the old actor
    // (the other node counts what died with it).
    self->delayed_send(self, 50ms, caf::get_atom::value);
  });
  self->state.backoff_ms = kMinBackoffMs;
  self->send(self, caf::connect_atom::value);
  return {
    [=](caf::connect_atom) {
      // (TLS: a peer that fails the handshake, or answers garbage, ends
      // this request with an error; BASP never sees its bytes.)
      self->request(mm, 5s, caf::connect_atom::value, host, port)
        .then(
          [=](const caf::node_id&, caf::strong_actor_ptr& ptr,
              const std::set<std::string>&) {
            if (!ptr) {
              retry_later("no actor is published there");
              return;
            }
            self->state.supervisor = caf::actor_cast<caf::actor>(ptr);
            self->monitor(self->state.supervisor);
            fetch(true);
          },
          [=](caf::error& err) { retry_later(self->system().render(err)); });
    },
    [=](caf::get_atom) {
      if (self->state.supervisor)
        fetch(false);
    },
  };
}

// Ingest is open loop: clients do not wait for an answer, so whenever the
// receive thread is off the CPU (the aggregators, the client and the kernel
// share the cores) datagrams pile up in the socket. 32 MiB of socket buffer
// (the kernel charges each datagram its buffer's true size, a few KiB for
// a full one: over 10,000 datagrams, tens of milliseconds at 180,000/s)
// absorbs such stalls instead of dropping (docs/benchmarks.md, "Tally:
// anonymous batches..."). net.receive_buffer in the configuration
// overrides it.
// Names per aggregator by default: ~20 MB of table and names each at the
// bound (docs/guide.md, "Bounded state"), so that a sender of ever-new
// names cannot grow the process without limit.
constexpr size_t kDefaultMaxKeys = 250'000;
constexpr size_t kMaxMaxKeys = size_t{1} << 31;

// Pools and arenas sized for this service unless configured: ingest
// handlers end within their datagram (a few arenas at a time), queries wait
// for replies (one arena each), and datagrams over 2 KiB are rare, so
// 512 arenas (8 MiB) and 32 jumbo slots (2 MiB) instead of the library's
// 2,048 and 128: peak RSS ~44 MB instead of ~72 MB, prefaulted either way
// (docs/benchmarks.md, "Tally under flood"). Idle workers block instead
// of napping: at a steady 10,000 datagrams/s the aggregators' worker is
// woken per batch and CAF's 50 µs naps between batches cost more than the
// work (18% of a core instead of 9%), while the flood loses little.
// Applied to what the configuration left at the library's defaults (a
// configuration that sets a library default explicitly gets tally's).
void apply_tally_defaults(mayfly::runtime_config& cfg) {
  mayfly::runtime_config lib;
  if (cfg.idle == lib.idle)
    cfg.idle = mayfly::worker_idle::block;
  if (cfg.memory.arenas.capacity == lib.memory.arenas.capacity)
    cfg.memory.arenas.capacity = 512;
  if (cfg.memory.buffers.jumbo_capacity == lib.memory.buffers.jumbo_capacity)
    cfg.memory.buffers.jumbo_capacity = 32;
}

// The configuration file serve read (--config, else MAYFLY_CONFIG), for
// its "service" section; empty: none.
std::string config_path(int argc, char** argv) {
  std::string path;
  if (const char* v = std::getenv("MAYFLY_CONFIG"))
    path = v;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--config" && i + 1 < argc)
      path = argv[++i];
    else if (arg.rfind("--config=", 0) == 0)
      path = std::string{arg.substr(9)};
  }
  return path;
}

// The configuration's "service" section (an empty object when absent).
nlohmann::json service_section(const std::string& path) {
  if (path.empty())
    return nlohmann::json::object();
  auto doc = mayfly::read_config_file(path); // serve has checked it
  if (!doc || !doc->is_object() || !doc->contains("service"))
    return nlohmann::json::object();
  return (*doc)["service"];
}

// --aggregators: N (1..1024) or HOST:PORT (port 1..65535).
mayfly::flag_check aggregators_check() {
  return [](std::string_view value) -> std::string {
    const char* expected = "N (1..1024) or HOST:PORT";
    auto colon = value.rfind(':');
    if (colon == std::string_view::npos)
      return mayfly::parse_uint(value, 1, 1024) ? "" : expected;
    auto port = mayfly::parse_port(value.substr(colon + 1));
    return colon > 0 && port && *port != 0 ? "" : expected;
  };
}

mayfly::endpoint_config ingest_endpoint_defaults() {
  mayfly::endpoint_config cfg;
  cfg.receive_buffer = 32u << 20;
  return cfg;
}

} // namespace

int main(int argc, char** argv) {
  std::string aggregators, pin, publish, max_keys;
  tally::transport transport;
  auto opts = mayfly::parse_serve_options(
    argc, argv,
    "mayfly-tally: statsd-like counters; '?NAME' and '?*' query them.", 9001,
    {{"aggregators",
      "N: number of aggregator actors (default: workers); HOST:PORT: forward "
      "to the aggregator node published there",
      &aggregators, aggregators_check()},
     {"publish", "[ADDR:]PORT: be an aggregator node, publish the "
                 "aggregators on TCP ADDR:PORT (default address 127.0.0.1; "
                 "port 0: any) for ingest nodes",
      &publish,
      [](std::string_view value) -> std::string {
        tally::tcp_endpoint ignored;
        return tally::parse_publish(value, ignored).empty()
                 ? ""
                 : "an [ADDRESS:]PORT (port 0..65535, IPv6 in brackets)";
      }},
     {"tls-cert", "FILE: this node's certificate (PEM) for --publish and "
                  "--aggregators HOST:PORT",
      &transport.cert},
     {"tls-key", "FILE: its private key (unencrypted PEM)", &transport.key},
     {"tls-ca", "FILE: the CA certificate a peer's certificate must chain to "
                "(tools/make-tally-certs.sh makes all three)",
      &transport.ca},
     {"plaintext", "1: no TLS between nodes, loopback addresses only (any "
                   "local user can then reach the aggregators)",
      &transport.plaintext, mayfly::expect_one_of({"0", "1"})},
     {"pin", "1: also store received names as slices (shows pinning, or "
             "the detach policy at work)", &pin,
      mayfly::expect_one_of({"0", "1"})},
     {"max-keys", "N: names one aggregator holds at most (default 250000); "
                  "a line with a new name beyond that is refused, counted",
      &max_keys, mayfly::expect_uint(1, kMaxMaxKeys)}},
    ingest_endpoint_defaults());
  apply_tally_defaults(opts.config.runtime);
  auto shared = std::make_shared<shared_state>();
  shared->pin = pin == "1";
  shared->max_keys = kDefaultMaxKeys;
  {
    // The configuration file's "service": {"max_keys_per_aggregator": N};
    // the flag wins.
    auto section = service_section(config_path(argc, argv));
    if (!section.is_object()) {
      std::fprintf(stderr, "%s: invalid configuration: service: expected "
                           "an object\n", opts.program.c_str());
      return 2;
    }
    mayfly::config_reader r{section, "service"};
    uint64_t n = kDefaultMaxKeys;
    r.only({"max_keys_per_aggregator"})
      .read("max_keys_per_aggregator", n, 1, kMaxMaxKeys);
    if (!r.ok()) {
      std::fprintf(stderr, "%s: invalid configuration: %s\n",
                   opts.program.c_str(), r.error().message().c_str());
      return 2;
    }
    shared->max_keys = static_cast<size_t>(n);
  }
  if (!max_keys.empty()) {
    char* end = nullptr;
    errno = 0;
    auto n = std::strtoull(max_keys.c_str(), &end, 10);
    if (errno != 0 || *end != '\0' || max_keys.front() == '-' || n == 0
        || n > kMaxMaxKeys) {
      std::fprintf(stderr, "%s: --max-keys: expected 1..%zu, got '%s'\n",
                   opts.program.c_str(), kMaxMaxKeys, max_keys.c_str());
      return 2;
    }
    shared->max_keys = static_cast<size_t>(n);
  }
  tally::tcp_endpoint remote, published;
  auto usage_error = [&](const char* flag, const std::string& why) {
    std::fprintf(stderr, "%s: %s: %s\n", opts.program.c_str(), flag,
                 why.c_str());
    return 2;
  };
  if (aggregators.find(':') != std::string::npos) {
    shared->remote = true;
    if (auto err = tally::parse_connect(aggregators, remote); !err.empty())
      return usage_error("--aggregators", err);
    if (!publish.empty())
      return usage_error("--publish", "--publish and --aggregators HOST:PORT "
                                      "exclude each other");
    if (auto err = tally::check(transport, remote); !err.empty())
      return usage_error("--aggregators", err);
  } else if (!publish.empty()) {
    if (auto err = tally::parse_publish(publish, published); !err.empty())
      return usage_error("--publish", err);
    if (auto err = tally::check(transport, published); !err.empty())
      return usage_error("--publish", err);
  }
  shared->distributed = shared->remote || !publish.empty();
  if (shared->distributed) // CAF's io module, only here
    opts.config.runtime.configure_caf = [transport](caf::actor_system_config& cfg) {
      tally::configure(cfg, transport);
    };
  mayfly::runtime* runtime = nullptr;
  mayfly::stats_registry::registration tally_stats;
  caf::actor supervisor;
  uint16_t published_port = 0;
  int exit_code = 0;
  auto setup = [&](mayfly::runtime& rt) -> mayfly::handler_type& {
    runtime = &rt;
    if (shared->remote) {
      std::fprintf(stderr, "%s: to the aggregator node at %s:%u: %s\n",
                   opts.program.c_str(), remote.host.c_str(), remote.port,
                   tally::describe(transport).c_str());
      rt.spawn(connector, shared, remote.host, remote.port,
               tally::middleman_for(rt.system(), transport));
    } else {
      size_t n = aggregators.empty() ? rt.config().workers
                                     : std::stoul(aggregators);
      n = std::max<size_t>(n, 1);
      auto holder = rt.holder_tag("tally aggregator");
      shared->slots = n;
      shared->applied = std::make_unique<std::atomic<int64_t>[]>(n);
      shared->refused = std::make_unique<std::atomic<int64_t>[]>(n);
      shared->group = std::make_shared<mayfly::supervised_group>();
      // --8<-- [start:supervisor]
      mayfly::supervisor_options sup;
      sup.name = "tally aggregator";
      sup.children = n;
      sup.policy = {5, 10000}; // at most 5 restarts in 10 s
      // Each aggregator, and each one restarted, is long-lived: batches
      // sent to it go through the runtime's detach policy.
      sup.make_child = [shared, holder, &rt](caf::actor_system& sys,
                                             size_t slot) {
        auto child = sys.spawn(aggregator, shared->pin, shared->max_keys,
                               aggregator_counters{&shared->applied[slot],
                                                   &shared->refused[slot]});
        rt.mark_long_lived(child, holder);
        return child;
      };
      // The restarted aggregator starts empty: what the dead one had
      // counted is lost, and counted as such.
      sup.on_death = [shared](size_t slot, const caf::error&) {
        shared->lost_with_state += shared->applied[slot].exchange(0);
      };
      sup.on_give_up = [shared, &rt] {
        shared->gave_up = true;
        rt.request_stop();
      };
      supervisor = mayfly::spawn_supervisor(rt, std::move(sup), shared->group);
      // --8<-- [end:supervisor]
    }
    if (!publish.empty()) {
      auto port = tally::publish(rt.system(), transport, supervisor, published);
      if (!port) {
        std::fprintf(stderr, "%s: cannot publish the aggregators on tcp "
                             "%s:%u: %s\n", opts.program.c_str(),
                     published.host.c_str(), published.port,
                     rt.system().render(port.error()).c_str());
        exit_code = 1;
        rt.request_stop();
      } else {
        published_port = *port;
        std::printf("%s: aggregators published on tcp %s:%u\n",
                    opts.program.c_str(), published.host.c_str(), *port);
        std::printf("%s: the published port is protected by: %s\n",
                    opts.program.c_str(), tally::describe(transport).c_str());
      }
    }
    tally_stats
      = rt.stats().add("/tally", [shared] { return shared->stats(); },
                       {kTallySection});
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
    }, query_options());
    shared->handler = &h;
    return h;
  };
  auto rc = mayfly::serve(opts, setup, {}, [&] {
    // No handle may outlive the actor system.
    if (published_port != 0)
      tally::unpublish(runtime->system(), transport, supervisor,
                       published_port);
    supervisor = nullptr;
    if (shared->group)
      shared->group->clear();
    shared->route.store(std::make_shared<const remote_route>());
    tally_stats.reset();
  });
  std::fprintf(stderr, "%s: tally %s\n", opts.program.c_str(),
               shared->stats().dump().c_str());
  if (shared->gave_up) {
    std::fprintf(stderr, "%s: stopped: the aggregators' restart intensity "
                         "was exceeded\n", opts.program.c_str());
    return 4;
  }
  return exit_code != 0 ? exit_code : rc;
}
