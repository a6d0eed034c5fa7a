#include <mayfly/runtime/user_metrics.hpp>

#include <algorithm>

namespace mayfly {

user_metrics::user_metrics(stats_registry& registry) : registry_(registry) {
  // Never reallocated: the sections registered view these arrays while
  // later declarations append to them.
  counter_info_.reserve(kMaxMetrics);
  gauge_info_.reserve(kMaxMetrics);
  counter_cells_.reserve(kMaxMetrics);
  gauge_cells_.reserve(kMaxMetrics);
}

result<user_counter> user_metrics::counter(std::string_view name,
                                           std::string_view help,
                                           std::string_view unit) {
  auto cells = declare(name, help, unit, metric_kind::counter);
  if (!cells)
    return cells.error();
  return user_counter{*cells};
}

result<user_gauge> user_metrics::gauge(std::string_view name,
                                       std::string_view help,
                                       std::string_view unit) {
  auto cells = declare(name, help, unit, metric_kind::gauge);
  if (!cells)
    return cells.error();
  return user_gauge{*cells};
}

result<sharded_counters<1>*>
user_metrics::declare(std::string_view name, std::string_view help,
                      std::string_view unit, metric_kind kind) {
  auto fail = [&](const char* what) {
    return error_info{errc::invalid_config, what, 0,
                      "statistic \"" + std::string{name} + "\""};
  };
  if (!valid_metric_name(name))
    return fail("a statistic's name is 1 to 64 characters of [a-z0-9_], "
                "starting with a letter");
  if (help.find_first_of("\r\n") != std::string_view::npos)
    return fail("help text must be one line");
  if (unit.find_first_of("\r\n|") != std::string_view::npos)
    return fail("unit must be one word");
  std::lock_guard<std::mutex> guard{mtx_};
  bool taken = std::any_of(records_.begin(), records_.end(),
                           [&](const record& r) { return r.name == name; });
  if (taken)
    return fail("a statistic of that name is already declared");
  if (records_.size() >= kMaxMetrics)
    return fail("too many user statistics (user_metrics::kMaxMetrics)");
  auto& r = records_.emplace_back();
  r.name = name;
  r.help = help;
  r.unit = unit;
  metric_info info{r.name, kind, r.unit, r.help};
  if (kind == metric_kind::counter) {
    counter_info_.push_back(info);
    counter_cells_.push_back(&r.cells);
  } else {
    gauge_info_.push_back(info);
    gauge_cells_.push_back(&r.cells);
  }
  register_sources();
  return &r.cells;
}

void user_metrics::register_sources() {
  // Registered again with the longer list; the old registration goes when
  // the new one is in (a collect between the two merges equal objects).
  // The source reads the first `n` entries, never written again, of arrays
  // that never move: it takes no lock (collect() holds the registry's).
  auto add = [this](const char* path, const char* id,
                    const std::vector<metric_info>& infos,
                    const std::vector<sharded_counters<1>*>& cells) {
    auto n = infos.size();
    const auto* info = infos.data();
    auto* const* cell = cells.data();
    return registry_.add(
      path,
      [n, info, cell] {
        auto doc = nlohmann::json::object();
        for (size_t i = 0; i < n; ++i)
          doc[std::string{info[i].name}] = cell[i]->sum(0);
        return doc;
      },
      {metric_section{id, path, std::span<const metric_info>{info, n}}});
  };
  if (!counter_info_.empty())
    counters_source_ = add("/counters", "counters", counter_info_,
                           counter_cells_);
  if (!gauge_info_.empty())
    gauges_source_ = add("/gauges", "gauges", gauge_info_, gauge_cells_);
}

} // namespace mayfly
