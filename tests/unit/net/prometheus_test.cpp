// to_prometheus: dynamic keys as labels, quantiles, units, counters versus
// gauges, info metrics, escaping, clashes; and every output checked by a
// small parser of the text format 0.0.4 (also used by stats_endpoint_test).

#include <mayfly/net/prometheus.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <mayfly/actors/runtime.hpp>
#include <mayfly/net/udp_endpoint.hpp>
#include <mayfly/runtime/latency_histogram.hpp>

#include "exposition.hpp"

namespace mayfly::test {

namespace {

bool is_name_char(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'
         || c == ':' || (!first && c >= '0' && c <= '9');
}

bool parse_value(const std::string& s, double& out) {
  if (s == "NaN" || s == "+Inf" || s == "-Inf") {
    out = 0;
    return true;
  }
  if (s.empty())
    return false;
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}

} // namespace

/// Checks `text` against the exposition format 0.0.4 as mayfly writes it:
/// every line is a comment or `name{labels} value`; every family has
/// exactly one HELP and one TYPE line before its samples and its samples
/// together; counters end in `_total`; no series appears twice; label names
/// are valid and unique within a series, label values properly escaped;
/// a histogram's samples are `<family>_bucket`, `_sum` and `_count`.
exposition parse_exposition(const std::string& text) {
  exposition out;
  std::set<std::string> helped, finished;
  std::string current; // family whose samples are being read
  auto fail = [&](const std::string& why, const std::string& line) {
    if (out.error.empty())
      out.error = why + ": '" + line + "'";
  };
  std::istringstream in{text};
  std::string line;
  size_t n = 0;
  while (std::getline(in, line) && n++ < 1000000) {
    if (line.empty()) {
      fail("empty line", line);
      continue;
    }
    if (line[0] == '#') {
      std::istringstream words{line};
      std::string hash, kind, name;
      words >> hash >> kind >> name;
      if (kind == "HELP") {
        if (!helped.insert(name).second)
          fail("second HELP", line);
      } else if (kind == "TYPE") {
        std::string type;
        words >> type;
        if (out.types.count(name) > 0)
          fail("second TYPE", line);
        if (type != "counter" && type != "gauge" && type != "histogram"
            && type != "untyped")
          fail("unexpected type", line);
        bool total = name.size() > 6
                     && name.compare(name.size() - 6, 6, "_total") == 0;
        if (type == "counter" && !total)
          fail("counter without _total", line);
        if (helped.count(name) == 0)
          fail("TYPE without HELP before it", line);
        out.types[name] = type;
        if (!current.empty())
          finished.insert(current);
        current = name;
      }
      continue;
    }
    size_t i = 0;
    while (i < line.size() && is_name_char(line[i], i == 0))
      ++i;
    auto name = line.substr(0, i);
    if (name.empty()) {
      fail("no metric name", line);
      continue;
    }
    // A histogram's samples are <family>_bucket, _sum and _count.
    auto family = name;
    if (out.types.count(name) == 0) {
      for (std::string suffix : {"_bucket", "_sum", "_count"}) {
        if (name.size() <= suffix.size()
            || name.compare(name.size() - suffix.size(), suffix.size(), suffix)
                 != 0)
          continue;
        auto base = name.substr(0, name.size() - suffix.size());
        auto t = out.types.find(base);
        if (t != out.types.end() && t->second == "histogram")
          family = base;
      }
    }
    if (out.types.count(family) == 0)
      fail("sample before its TYPE", line);
    if (family != current || finished.count(family) > 0)
      fail("samples of a family not together", line);
    std::string labels;
    std::set<std::string> label_names;
    if (i < line.size() && line[i] == '{') {
      auto start = i;
      ++i;
      while (i < line.size() && line[i] != '}') {
        size_t j = i;
        while (j < line.size() && is_name_char(line[j], j == i)
               && line[j] != ':')
          ++j;
        auto lname = line.substr(i, j - i);
        if (lname.empty() || j + 1 >= line.size() || line[j] != '='
            || line[j + 1] != '"') {
          fail("bad label", line);
          break;
        }
        if (!label_names.insert(lname).second)
          fail("label twice", line);
        j += 2;
        while (j < line.size() && line[j] != '"') {
          if (line[j] == '\\') {
            if (j + 1 >= line.size()
                || (line[j + 1] != '\\' && line[j + 1] != '"'
                    && line[j + 1] != 'n'))
              fail("bad escape", line);
            ++j;
          }
          ++j;
        }
        if (j >= line.size()) {
          fail("unterminated label value", line);
          break;
        }
        i = j + 1;
        if (i < line.size() && line[i] == ',')
          ++i;
      }
      if (i >= line.size()) {
        fail("unterminated labels", line);
        continue;
      }
      ++i; // '}'
      labels = line.substr(start, i - start);
    }
    if (i >= line.size() || line[i] != ' ') {
      fail("no space before value", line);
      continue;
    }
    double value = 0;
    if (!parse_value(line.substr(i + 1), value))
      fail("bad value", line);
    if (!out.series.emplace(name + labels, value).second)
      fail("duplicate series", line);
  }
  return out;
}

} // namespace mayfly::test

namespace {

using namespace mayfly;
using json = nlohmann::json;
using mayfly::test::parse_exposition;

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos
         || text.compare(0, line.size() + 1, line + "\n") == 0;
}

/// The descriptions of the built-in components (net/prometheus.hpp).
std::string to_prometheus(const json& doc) {
  static const auto builtin = builtin_metric_sections();
  return mayfly::to_prometheus(doc, builtin);
}

std::string type_of(const std::string& text, const std::string& family) {
  auto p = parse_exposition(text);
  auto i = p.types.find(family);
  return i == p.types.end() ? "" : i->second;
}

TEST(StatsPrometheus, DynamicKeysBecomeLabels) {
  json doc = {
    {"schema", 1},
    {"handlers", {{"echo", {{"spawned", 12}, {"in_flight", 2}}}}},
    {"pools", {{"standard", {{"in_use", 3}, {"acquisitions", 40}}}}},
    {"net", {{"udp:127.0.0.1:9000", {{"datagrams_in", 10}}}}},
  };
  auto text = to_prometheus(doc);
  auto p = parse_exposition(text);
  EXPECT_EQ(p.error, "") << text;
  EXPECT_TRUE(has_line(text, "mayfly_handlers_spawned_total{handler=\"echo\"} 12"))
    << text;
  EXPECT_TRUE(has_line(text, "mayfly_handlers_in_flight{handler=\"echo\"} 2"));
  EXPECT_TRUE(has_line(text, "mayfly_pools_in_use{pool=\"standard\"} 3"));
  EXPECT_TRUE(
    has_line(text, "mayfly_pools_acquisitions_total{pool=\"standard\"} 40"));
  EXPECT_TRUE(has_line(text, "mayfly_net_datagrams_in_total{endpoint=\"udp:"
                             "127.0.0.1:9000\"} 10"));
  EXPECT_TRUE(has_line(text, "mayfly_schema 1"));
  EXPECT_EQ(p.types["mayfly_handlers_spawned_total"], "counter");
  EXPECT_EQ(p.types["mayfly_pools_in_use"], "gauge");
  EXPECT_TRUE(has_line(text, "# TYPE mayfly_handlers_spawned_total counter"));
}

TEST(StatsPrometheus, OneFamilyForManyLabelValues) {
  json doc = {{"handlers",
               {{"a", {{"spawned", 1}}},
                {"b", {{"spawned", 2}}},
                {"c", {{"spawned", 3}}}}}};
  auto text = to_prometheus(doc);
  auto p = parse_exposition(text);
  EXPECT_EQ(p.error, "") << text;
  EXPECT_EQ(p.types.size(), 1u);
  EXPECT_EQ(p.series.size(), 3u);
  size_t type_lines = 0, pos = 0;
  while ((pos = text.find("# TYPE", pos)) != std::string::npos) {
    ++type_lines;
    ++pos;
  }
  EXPECT_EQ(type_lines, 1u);
}

TEST(StatsPrometheus, NestedDynamicKeysAndStatusCodes) {
  json doc = {
    {"pools",
     {{"standard",
       {{"binaries",
         {{"live", 4}, {"refs", {{"1", 3}, {"3-4", 1}, {"9+", 0}}}}}}}}},
    {"net",
     {{"http:127.0.0.1:9100", {{"responses", {{"200", 5}, {"404", 1}}}}}}},
  };
  auto text = to_prometheus(doc);
  EXPECT_EQ(parse_exposition(text).error, "") << text;
  EXPECT_TRUE(has_line(
    text, "mayfly_pools_binaries_refs{pool=\"standard\",refs=\"3-4\"} 1"))
    << text;
  EXPECT_TRUE(has_line(
    text, "mayfly_pools_binaries_refs{pool=\"standard\",refs=\"9+\"} 0"));
  EXPECT_EQ(type_of(text, "mayfly_pools_binaries_refs"), "gauge");
  EXPECT_TRUE(has_line(text, "mayfly_net_responses_total{endpoint=\"http:"
                             "127.0.0.1:9100\",code=\"404\"} 1"));
  EXPECT_EQ(type_of(text, "mayfly_net_responses_total"), "counter");
}

TEST(StatsPrometheus, QuantilesBecomeOneGaugeFamily) {
  json doc = {
    {"arenas", {{"bytes_used", {{"p50", 100}, {"p99", 900}, {"max", 4000}}}}},
    {"handlers",
     {{"echo",
       {{"arena",
         {{"bytes_p50", 64},
          {"bytes_p99", 128},
          {"bytes_max", 512},
          {"overflow_blocks", 2}}},
        {"lifetime_us", {{"p50", 1500}, {"p99", 2500.5}, {"max", 1e6}}}}}}},
  };
  auto text = to_prometheus(doc);
  EXPECT_EQ(parse_exposition(text).error, "") << text;
  EXPECT_TRUE(has_line(text, "mayfly_arenas_bytes_used{quantile=\"0.5\"} 100"))
    << text;
  EXPECT_TRUE(has_line(text, "mayfly_arenas_bytes_used{quantile=\"0.99\"} 900"));
  EXPECT_TRUE(has_line(text, "mayfly_arenas_bytes_used{quantile=\"1\"} 4000"));
  EXPECT_EQ(type_of(text, "mayfly_arenas_bytes_used"), "gauge");
  EXPECT_TRUE(has_line(
    text, "mayfly_handlers_arena_bytes{handler=\"echo\",quantile=\"0.99\"} 128"));
  EXPECT_TRUE(has_line(
    text, "mayfly_handlers_arena_overflow_blocks_total{handler=\"echo\"} 2"));
  // Microseconds become seconds, value scaled.
  EXPECT_TRUE(has_line(
    text,
    "mayfly_handlers_lifetime_seconds{handler=\"echo\",quantile=\"0.5\"} 0.0015"));
  EXPECT_TRUE(has_line(
    text, "mayfly_handlers_lifetime_seconds{handler=\"echo\",quantile=\"1\"} 1"));
}

TEST(StatsPrometheus, UnitsBooleansAndStrings) {
  json doc = {
    {"runtime",
     {{"state", "running"},
      {"overload", "pause"},
      {"uptime_s", 2.5},
      {"workers", 2},
      {"malloc_is_mimalloc", true},
      {"balance", {{"zero", false}, {"handlers", 0}}}}},
    {"pools",
     {{"standard",
       {{"pages", "none"},
        {"binaries", {{"oldest_age_ms", 1500}, {"oldest_holder", 42}}}}}}},
  };
  auto text = to_prometheus(doc);
  EXPECT_EQ(parse_exposition(text).error, "") << text;
  EXPECT_TRUE(has_line(text, "mayfly_runtime_uptime_seconds 2.5")) << text;
  EXPECT_EQ(type_of(text, "mayfly_runtime_uptime_seconds"), "gauge");
  EXPECT_TRUE(has_line(text, "mayfly_runtime_workers 2"));
  EXPECT_TRUE(has_line(text, "mayfly_runtime_malloc_is_mimalloc 1"));
  EXPECT_TRUE(has_line(text, "mayfly_runtime_balance_zero 0"));
  EXPECT_TRUE(has_line(text, "mayfly_runtime_balance_handlers 0"));
  EXPECT_TRUE(
    has_line(text, "mayfly_runtime_info{overload=\"pause\",state=\"running\"} 1"));
  EXPECT_TRUE(has_line(text, "mayfly_pools_info{pool=\"standard\",pages=\"none\"} 1"));
  EXPECT_TRUE(has_line(
    text, "mayfly_pools_binaries_oldest_age_seconds{pool=\"standard\"} 1.5"));
  EXPECT_EQ(text.find("oldest_holder"), std::string::npos); // an identifier
}

TEST(StatsPrometheus, KindsComeFromTheDescriptions) {
  json doc = {{"arenas",
               {{"capacity", 1},
                {"blocks_in_use", 1},
                {"blocks_peak", 1},
                {"leases_out", 1},
                {"max_arena_bytes", 1},
                {"block_size", 1},
                {"leases", 1},
                {"resets", 1},
                {"heap_blocks", 1}}},
              {"binaries",
               {{"live_slices", 1},
                {"viewed_bytes", 1},
                {"dedicated_live", 1},
                {"heap_allocations", 1}}},
              {"net",
               {{"e",
                 {{"bytes_in", 1},
                  {"receive_buffer_bytes", 1},
                  {"recv_batch_avg", 1.5},
                  {"syscalls_per_datagram", 0.5},
                  {"kernel_drops", 1},
                  {"source_limit_drops", 1},
                  {"source_table_evictions", 1},
                  {"sources_limited_live", 1},
                  {"receive_threads", 1}}}}}};
  auto text = to_prometheus(doc);
  auto p = parse_exposition(text);
  EXPECT_EQ(p.error, "") << text;
  for (auto g : {"mayfly_arenas_capacity", "mayfly_arenas_blocks_in_use",
                 "mayfly_arenas_blocks_peak", "mayfly_arenas_leases_out",
                 "mayfly_arenas_max_arena_bytes", "mayfly_arenas_block_size",
                 "mayfly_binaries_live_slices", "mayfly_binaries_viewed_bytes",
                 "mayfly_binaries_dedicated_live",
                 "mayfly_net_receive_buffer_bytes", "mayfly_net_recv_batch_avg",
                 "mayfly_net_syscalls_per_datagram",
                 "mayfly_net_sources_limited_live",
                 "mayfly_net_receive_threads"})
    EXPECT_EQ(p.types[g], "gauge") << g;
  for (auto c : {"mayfly_arenas_leases_total", "mayfly_arenas_resets_total",
                 "mayfly_arenas_heap_blocks_total",
                 "mayfly_binaries_heap_allocations_total",
                 "mayfly_net_bytes_in_total", "mayfly_net_kernel_drops_total",
                 "mayfly_net_source_limit_drops_total",
                 "mayfly_net_source_table_evictions_total"})
    EXPECT_EQ(p.types[c], "counter") << c;
}

TEST(StatsPrometheus, LabelValuesAreEscaped) {
  json doc = {{"handlers",
               {{"a\"b\\c\nd", {{"spawned", 1}}},
                {std::string{"bad\xff\xfe utf8"}, {{"spawned", 2}}}}}};
  auto text = to_prometheus(doc);
  EXPECT_EQ(parse_exposition(text).error, "") << text;
  EXPECT_TRUE(has_line(
    text, "mayfly_handlers_spawned_total{handler=\"a\\\"b\\\\c\\nd\"} 1"))
    << text;
  EXPECT_TRUE(
    has_line(text, "mayfly_handlers_spawned_total{handler=\"bad?? utf8\"} 2"));
}

TEST(StatsPrometheus, NamesAreSanitized) {
  constexpr metric_info odd[] = {{"a.b-c", metric_kind::counter, "", "odd"}};
  const metric_section sections[] = {{"odd", "/odd section", odd}};
  json doc = {{"odd section", {{"a", {{"b-c", 1}}}}}};
  auto text = mayfly::to_prometheus(doc, sections);
  EXPECT_EQ(parse_exposition(text).error, "") << text;
  EXPECT_TRUE(has_line(text, "mayfly_odd_section_a_b_c_total 1")) << text;
}

TEST(StatsPrometheus, UndescribedFiguresAreUntypedAndCounted) {
  json doc = {{"schema", 1},
              {"mystery", {{"figure", 7}, {"name", "x"}}},
              {"handlers", {{"echo", {{"spawned", 1}, {"new_thing", 2}}}}}};
  auto text = to_prometheus(doc);
  auto p = parse_exposition(text);
  EXPECT_EQ(p.error, "") << text;
  EXPECT_EQ(p.types["mayfly_mystery_figure"], "untyped") << text;
  EXPECT_TRUE(has_line(text, "mayfly_mystery_figure 7"));
  EXPECT_TRUE(has_line(text, "mayfly_handlers_echo_new_thing 2"));
  EXPECT_TRUE(has_line(text, "# HELP mayfly_mystery_figure undescribed "
                             "statistic /mystery/figure"));
  EXPECT_EQ(text.find("name=\"x\""), std::string::npos); // strings left out
  EXPECT_TRUE(has_line(text, "# mayfly: 3 figures without a description "
                             "(untyped)"))
    << text;
  EXPECT_EQ(p.types["mayfly_handlers_spawned_total"], "counter");
}

TEST(StatsPrometheus, HelpAndUnitComeFromTheDescriptions) {
  constexpr metric_info mine[] = {
    {"lines", metric_kind::counter, "lines", "syslog lines received"},
    {"backlog_ms", metric_kind::gauge, "ms", "oldest line waiting"},
    {"rates.{source}", metric_kind::gauge, "", "lines per second by source"},
  };
  const metric_section sections[] = {{"mine", "/svc", mine}};
  json doc = {{"svc",
               {{"lines", 5},
                {"backlog_ms", 250},
                {"rates", {{"kernel", 3}, {"auth", 1}}}}}};
  auto text = mayfly::to_prometheus(doc, sections);
  auto p = parse_exposition(text);
  EXPECT_EQ(p.error, "") << text;
  EXPECT_TRUE(has_line(text, "# HELP mayfly_svc_lines_total syslog lines "
                             "received [lines] (/svc/lines)"))
    << text;
  EXPECT_TRUE(has_line(text, "mayfly_svc_lines_total 5"));
  EXPECT_TRUE(has_line(text, "mayfly_svc_backlog_seconds 0.25"));
  EXPECT_TRUE(has_line(text, "# HELP mayfly_svc_backlog_seconds oldest line "
                             "waiting (/svc/backlog_ms)"));
  EXPECT_TRUE(has_line(text, "mayfly_svc_rates{source=\"kernel\"} 3"));
  EXPECT_EQ(p.types["mayfly_svc_rates"], "gauge");
  EXPECT_EQ(text.find("without a description"), std::string::npos);
}

TEST(StatsPrometheus, ClashesAreSkippedNotDuplicated) {
  // "a-b" and "a_b" sanitize to the same name; "x" (a counter, x_total) and
  // "x_total" (also a counter) to the same series.
  constexpr metric_info s[] = {{"a-b", metric_kind::counter, "", "1"},
                               {"a_b", metric_kind::counter, "", "2"},
                               {"x", metric_kind::counter, "", "3"},
                               {"x_total", metric_kind::counter, "", "4"}};
  const metric_section sections[] = {{"s", "/s", s}};
  json doc = {{"s", {{"a-b", 1}, {"a_b", 2}, {"x", 3}, {"x_total", 4}}}};
  auto text = mayfly::to_prometheus(doc, sections);
  auto p = parse_exposition(text);
  EXPECT_EQ(p.error, "") << text;
  EXPECT_EQ(p.series.size(), 2u) << text;
  EXPECT_NE(text.find("# mayfly: 2 samples skipped"), std::string::npos)
    << text;
}

TEST(StatsPrometheus, OddInputNeverThrows) {
  EXPECT_EQ(to_prometheus(json::array({1, 2})).front(), '#');
  EXPECT_EQ(to_prometheus(json{}).front(), '#');
  EXPECT_EQ(to_prometheus(json("text")).front(), '#');
  json doc = {{"a", json::array({1, 2})},
              {"b", nullptr},
              {"c", {{"d", {{"e", {{"f", 1}}}}}}},
              {"g", json::object()},
              {"h", -5},
              {"i", 18446744073709551615ull},
              {"j", 1e300}};
  auto text = to_prometheus(doc);
  auto p = parse_exposition(text);
  EXPECT_EQ(p.error, "") << text;
  EXPECT_TRUE(has_line(text, "mayfly_c_d_e_f 1")) << text; // undescribed
  EXPECT_TRUE(has_line(text, "mayfly_h -5"));
  EXPECT_TRUE(has_line(text, "mayfly_i 18446744073709551615"));
  EXPECT_EQ(text.find("mayfly_a"), std::string::npos);
}

// A real document (runtime, pools, arenas, a handler, a UDP endpoint): it
// converts to a valid exposition, and the families docs/stats.md lists are
// there with the documented types. New fields may appear; these must not
// change.
TEST(StatsPrometheus, RealDocumentHasTheDocumentedFamilies) {
  runtime_config cfg;
  cfg.workers = 1;
  cfg.memory.buffers.standard_capacity = 64;
  cfg.memory.buffers.jumbo_capacity = 4;
  cfg.memory.buffers.prefault = false;
  cfg.memory.arenas.capacity = 64;
  cfg.memory.arenas.prefault = false;
  auto rt = runtime::make(cfg);
  ASSERT_TRUE(rt) << rt.error().message();
  auto& h = (*rt)->add_handler("echo", [](handler_context& ctx,
                                          const datagram& d) {
    ctx.reply(d.payload);
  });
  endpoint_config ec;
  ec.address = *udp_address::parse("127.0.0.1:0");
  auto ep = udp_endpoint::open(**rt, h, ec);
  ASSERT_TRUE(ep) << ep.error().message();
  (*rt)->start();
  auto text = mayfly::to_prometheus((*rt)->collect_stats(),
                                    (*rt)->stats().descriptions());
  (*rt)->stop();
  EXPECT_EQ(text.find("without a description"), std::string::npos) << text;
  auto p = parse_exposition(text);
  EXPECT_EQ(p.error, "") << text;
  std::map<std::string, std::string> expected{
    {"mayfly_schema", "gauge"},
    {"mayfly_runtime_info", "gauge"},
    {"mayfly_runtime_uptime_seconds", "gauge"},
    {"mayfly_runtime_in_flight", "gauge"},
    {"mayfly_runtime_balance_buffers_out", "gauge"},
    {"mayfly_pools_capacity", "gauge"},
    {"mayfly_pools_in_use", "gauge"},
    {"mayfly_pools_peak", "gauge"},
    {"mayfly_pools_acquisitions_total", "counter"},
    {"mayfly_pools_exhausted_total", "counter"},
    {"mayfly_pools_binaries_pinned_bytes", "gauge"},
    {"mayfly_pools_binaries_refs", "gauge"},
    {"mayfly_pools_binaries_oldest_age_seconds", "gauge"},
    {"mayfly_pools_allocations_total", "counter"},
    {"mayfly_arenas_blocks_in_use", "gauge"},
    {"mayfly_arenas_leases_total", "counter"},
    {"mayfly_arenas_bytes_used", "gauge"},
    {"mayfly_binaries_live_slices", "gauge"},
    {"mayfly_binaries_viewed_bytes", "gauge"},
    {"mayfly_binaries_heap_allocations_total", "counter"},
    {"mayfly_handlers_spawned_total", "counter"},
    {"mayfly_handlers_in_flight", "gauge"},
    {"mayfly_handlers_peak_in_flight", "gauge"},
    {"mayfly_handlers_lifetime_seconds", "gauge"},
    {"mayfly_handlers_arena_bytes", "gauge"},
    {"mayfly_net_info", "gauge"},
    {"mayfly_net_datagrams_in_total", "counter"},
    {"mayfly_net_bytes_in_total", "counter"},
    {"mayfly_net_recv_batch_avg", "gauge"},
    {"mayfly_net_kernel_drops_total", "counter"},
  };
  for (auto& [name, type] : expected)
    EXPECT_EQ(p.types[name], type) << name << "\n" << text;
  auto udp = "udp:" + (*ep)->local_address().to_string();
  EXPECT_EQ(p.series.count("mayfly_net_datagrams_in_total{endpoint=\"" + udp
                           + "\"}"),
            1u);
  EXPECT_EQ(p.series.count("mayfly_pools_in_use{pool=\"standard\"}"), 1u);
  EXPECT_EQ(p.series.count("mayfly_pools_in_use{pool=\"jumbo\"}"), 1u);
}

} // namespace

// A latency histogram (as runtime/latency_histogram.hpp writes it) becomes a
// real Prometheus histogram: cumulative buckets in seconds, +Inf last, _sum
// in seconds, _count equal to the +Inf bucket.
TEST(StatsPrometheus, LatencyHistogramBecomesAPrometheusHistogram) {
  mayfly::latency_histogram h;
  h.record(500);         // 0.5 µs: le 1e-06
  h.record(3000);        // 3 µs: le 5e-06
  h.record(3000);
  h.record(400000000);   // 400 ms: +Inf
  json doc = {{"handlers", {{"echo", {{"latency", {{"run", h.to_json()}}}}}}}};
  auto text = to_prometheus(doc);
  auto p = parse_exposition(text);
  EXPECT_EQ(p.error, "") << text;
  const std::string family = "mayfly_handlers_latency_run_seconds";
  EXPECT_EQ(type_of(text, family), "histogram") << text;
  auto bucket = [&](const std::string& le) {
    auto key = family + "_bucket{handler=\"echo\",le=\"" + le + "\"}";
    EXPECT_EQ(p.series.count(key), 1u) << key << "\n" << text;
    return p.series[key];
  };
  EXPECT_EQ(bucket("1e-06"), 1);
  EXPECT_EQ(bucket("2e-06"), 1);
  EXPECT_EQ(bucket("5e-06"), 3);
  EXPECT_EQ(bucket("0.1"), 3);
  EXPECT_EQ(bucket("+Inf"), 4);
  EXPECT_TRUE(has_line(text, family + "_count{handler=\"echo\"} 4")) << text;
  EXPECT_NEAR(p.series[family + "_sum{handler=\"echo\"}"], 0.4000065, 1e-9);
  // Buckets in bound order, before _sum and _count.
  auto first = text.find(family + "_bucket");
  EXPECT_LT(first, text.find(family + "_sum"));
  EXPECT_LT(text.find("le=\"+Inf\""), text.find(family + "_count"));
}
