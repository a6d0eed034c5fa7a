#pragma once

/// @file
/// User statistics: counters and gauges a service declares by name and
/// that appear in the statistics document and in /metrics with their help
/// text, without writing a stats source.
///
/// ```cpp
/// auto lines = rt.counter("lines", "syslog lines received", "lines");
/// if (!lines) { report(lines.error().message()); }
/// lines->add();          // any thread: one relaxed add on a sharded line
/// ```
///
/// Counters appear under "/counters/<name>" (Prometheus
/// `mayfly_counters_<name>_total`), gauges under "/gauges/<name>"
/// (`mayfly_gauges_<name>`); HELP is the help text given here.
///
/// **Handles** (`user_counter`, `user_gauge`) are two pointers' worth of
/// plain data: copy them into handlers freely. They stay valid as long as
/// the `user_metrics` (the runtime) that made them. `add` is O(1), no
/// allocation, no contended cache line (runtime/counters.hpp); reading sums
/// 16 shards.
///
/// Thread-safety: every member, any thread. Declaring allocates (the names
/// and help texts) and takes a mutex; do it at start-up, not per datagram.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <mayfly/runtime/counters.hpp>
#include <mayfly/runtime/metrics.hpp>
#include <mayfly/runtime/result.hpp>
#include <mayfly/runtime/stats_registry.hpp>

namespace mayfly {

/// A monotonic user counter. See file comment.
class user_counter {
public:
  /// Adds `n` (at least 0 for a counter). O(1), no allocation, any thread.
  void add(int64_t n = 1) const noexcept {
    cells_->add(0, n);
  }

  /// Sum over all threads. O(16).
  int64_t value() const noexcept {
    return cells_->sum(0);
  }

private:
  friend class user_metrics;
  explicit user_counter(sharded_counters<1>* cells) noexcept : cells_(cells) {
  }
  sharded_counters<1>* cells_;
};

/// A user gauge: a current value that goes up and down. See file comment.
class user_gauge {
public:
  /// Adds `n` (may be negative). O(1), no allocation, any thread.
  void add(int64_t n) const noexcept {
    cells_->add(0, n);
  }

  /// Subtracts `n`. O(1), no allocation, any thread.
  void sub(int64_t n) const noexcept {
    cells_->add(0, -n);
  }

  /// Sum of all adds and subs. O(16).
  int64_t value() const noexcept {
    return cells_->sum(0);
  }

private:
  friend class user_metrics;
  explicit user_gauge(sharded_counters<1>* cells) noexcept : cells_(cells) {
  }
  sharded_counters<1>* cells_;
};

/// The user statistics of one runtime, registered with its stats registry.
class user_metrics {
public:
  /// Most counters plus gauges one runtime may declare.
  static constexpr size_t kMaxMetrics = 128;

  explicit user_metrics(stats_registry& registry);
  user_metrics(const user_metrics&) = delete;
  user_metrics& operator=(const user_metrics&) = delete;

  /// Declares counter `name` (`valid_metric_name`: 1-64 of `[a-z0-9_]`,
  /// starting with a letter) with one line of `help` and its `unit`
  /// ("lines", "bytes", "ms"... or ""). Errors (`errc::invalid_config`,
  /// the name as subject): a bad name, a name already declared (as counter
  /// or gauge), help text with a line break, more than `kMaxMetrics`.
  result<user_counter> counter(std::string_view name, std::string_view help,
                               std::string_view unit = "");

  /// As `counter`, for a gauge.
  result<user_gauge> gauge(std::string_view name, std::string_view help,
                           std::string_view unit = "");

private:
  struct record {
    std::string name, help, unit;
    sharded_counters<1> cells;
  };

  result<sharded_counters<1>*> declare(std::string_view name,
                                       std::string_view help,
                                       std::string_view unit,
                                       metric_kind kind);
  void register_sources(); // mtx_ held

  stats_registry& registry_;
  mutable std::mutex mtx_;
  std::deque<record> records_;            // mtx_; stable addresses
  std::vector<metric_info> counter_info_; // mtx_; capacity kMaxMetrics
  std::vector<metric_info> gauge_info_;   // mtx_; capacity kMaxMetrics
  std::vector<sharded_counters<1>*> counter_cells_; // mtx_, as counter_info_
  std::vector<sharded_counters<1>*> gauge_cells_;   // mtx_, as gauge_info_
  stats_registry::registration counters_source_;
  stats_registry::registration gauges_source_;
};

} // namespace mayfly
