#pragma once

/// @file
/// `stats_registry`: where every statistic of a runtime is found.
///
/// Components register a *source*, a function that renders their current
/// figures as JSON, under a JSON-pointer path ("/pools", "/handlers/echo").
/// `collect()` calls every source and assembles one document with a top-level
/// `schema` number (docs/stats.md), bumped on any incompatible change.
///
/// Each source may bring the descriptions of its figures (runtime/metrics.hpp):
/// `descriptions()` returns them for every source registered now, which is
/// how /metrics finds TYPE, HELP and unit, and how tests find undescribed
/// keys. Sources registered under the same section (every handler type)
/// share one description.
///
/// Sources read sharded counters (runtime/counters.hpp) and scan pool
/// headers; they never lock the datagram path. The registry's own mutex
/// guards only the list of sources (registration is rare) and is held while
/// collecting, so a source cannot be unregistered while it runs.
///
/// Thread-safety: all members, any thread. `collect()` allocates (JSON);
/// call it from the stats endpoint's thread, not from handlers.

#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <mayfly/runtime/metrics.hpp>

namespace mayfly {

/// Collects statistics from registered sources. See file comment.
class stats_registry {
public:
  /// Version of the document layout (docs/stats.md).
  static constexpr int kSchema = 1;

  using source = std::function<nlohmann::json()>;

  /// The description of `schema`, the one figure the registry adds.
  static const metric_section schema_metrics;

  /// Unregisters its source when destroyed. Move-only.
  class registration {
  public:
    registration() noexcept = default;
    registration(registration&& other) noexcept;
    registration& operator=(registration&& other) noexcept;
    ~registration();
    /// Unregisters now (idempotent).
    void reset() noexcept;

  private:
    friend class stats_registry;
    registration(stats_registry* reg, uint64_t id) noexcept
      : reg_(reg), id_(id) {
    }
    stats_registry* reg_ = nullptr;
    uint64_t id_ = 0;
  };

  stats_registry() = default;
  stats_registry(const stats_registry&) = delete;
  stats_registry& operator=(const stats_registry&) = delete;

  /// Registers `fn` under `path` (a JSON pointer such as "/pools"). Several
  /// sources may share a path only if they render objects: their members
  /// are merged. `described` are the sections describing what `fn`
  /// renders; the metric lists they view must outlive the registration.
  [[nodiscard]] registration add(std::string path, source fn,
                                 std::vector<metric_section> described = {});

  /// Renders every source into one document: {"schema": kSchema, ...}.
  nlohmann::json collect() const;

  /// The sections of every registered source, each once (by path and
  /// list), plus the `schema` figure. Valid while those sources stay
  /// registered. Allocates.
  std::vector<metric_section> descriptions() const;

private:
  void remove(uint64_t id) noexcept;

  struct entry {
    uint64_t id;
    std::string path;
    source fn;
    std::vector<metric_section> described;
  };

  mutable std::mutex mtx_;
  std::vector<entry> entries_; // guarded by mtx_
  uint64_t next_id_ = 1;       // guarded by mtx_
};

} // namespace mayfly
