#include <mayfly/net/prometheus.hpp>

#include <mayfly/actors/messages.hpp>
#include <mayfly/actors/runtime.hpp>
#include <mayfly/net/stats_endpoint.hpp>
#include <mayfly/net/udp_endpoint.hpp>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <vector>

namespace mayfly {

namespace {

using json = nlohmann::json;

struct label {
  std::string name;
  std::string value;
};

bool starts_with(std::string_view s, std::string_view p) noexcept {
  return s.substr(0, p.size()) == p;
}

bool ends_with(std::string_view s, std::string_view p) noexcept {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  while (!s.empty()) {
    auto i = s.find(sep);
    auto part = s.substr(0, i);
    if (!part.empty())
      out.push_back(part);
    if (i == std::string_view::npos)
      break;
    s.remove_prefix(i + 1);
  }
  return out;
}

/// "{name}" -> "name"; "" for a literal part.
std::string_view label_of(std::string_view part) noexcept {
  if (part.size() > 2 && part.front() == '{' && part.back() == '}')
    return part.substr(1, part.size() - 2);
  return {};
}

/// One description, its section's path and its own name as one list of
/// parts (literal keys and `{label}`s).
struct pattern {
  std::vector<std::string_view> parts;
  const metric_info* info;
};

/// The quantile keys of a distribution and their label values.
constexpr std::pair<std::string_view, std::string_view> kQuantiles[] = {
  {"p50", "0.5"}, {"p99", "0.99"}, {"max", "1"}};

std::string_view quantile_of(std::string_view key) noexcept {
  for (auto& [k, q] : kQuantiles)
    if (key == k)
      return q;
  return {};
}

std::string sanitize_name(std::string_view part) {
  std::string out{part};
  for (auto& c : out) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_';
    if (!ok)
      c = '_';
  }
  return out;
}

std::string sanitize_label_name(std::string_view key) {
  auto out = sanitize_name(key);
  if (out.empty() || (out[0] >= '0' && out[0] <= '9'))
    out.insert(out.begin(), '_');
  if (starts_with(out, "__")) // reserved for Prometheus itself
    out.insert(out.begin(), 'x');
  return out;
}

/// Length of the valid UTF-8 sequence at `s[i]`, or 0.
size_t utf8_sequence(std::string_view s, size_t i) noexcept {
  auto b = static_cast<unsigned char>(s[i]);
  size_t n = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3
                          : (b >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || i + n > s.size())
    return 0;
  for (size_t k = 1; k < n; ++k)
    if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2)
      return 0;
  return n;
}

// Label values and HELP text: the format's escapes, and nothing that could
// break a line or a parser (control characters and invalid UTF-8 become
// '?').
std::string escape(std::string_view s, bool quote) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    char c = s[i];
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote) {
      out += "\\\"";
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      out += '?';
    } else {
      auto n = utf8_sequence(s, i);
      if (n == 0) {
        out += '?';
        ++i;
        continue;
      }
      out.append(s.substr(i, n));
      i += n;
      continue;
    }
    ++i;
  }
  return out;
}

std::string format_double(double x) {
  if (std::isnan(x))
    return "NaN";
  if (std::isinf(x))
    return x > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), x);
  return std::string(buf, res.ptr);
}

/// The value of a numeric or boolean leaf, divided by `divisor`.
std::string format_value(const json& v, double divisor) {
  if (v.is_boolean())
    return v.get<bool>() ? "1" : "0";
  if (divisor != 1.0)
    return format_double(v.get<double>() / divisor);
  if (v.is_number_unsigned())
    return std::to_string(v.get<uint64_t>());
  if (v.is_number_integer())
    return std::to_string(v.get<int64_t>());
  return format_double(v.get<double>());
}

struct family {
  std::string kind;
  std::string help;
  std::vector<std::string> samples; // rendered lines
  std::set<std::string> series;     // rendered label sets
};

/// What a leaf of the document is, by its description.
struct match {
  const metric_info* info = nullptr;
  std::vector<std::string> name;   // literal parts, the metric's name
  std::vector<label> labels;       // from `{label}` parts
  std::string_view quantile;       // distributions: "0.5", "0.99", "1"
  std::string where;               // the pattern as a path, for HELP
};

class converter {
public:
  explicit converter(std::span<const metric_section> described) {
    for (auto& section : described)
      for (auto& m : section.metrics) {
        pattern p{split(section.path, '/'), &m};
        for (auto part : split(m.name, '.'))
          p.parts.push_back(part);
        if (!p.parts.empty())
          patterns_[std::string{p.parts.front()}].push_back(std::move(p));
      }
  }

  void walk(const json& obj) {
    walk_object(obj);
  }

  std::string render() const {
    std::string out;
    for (auto& [name, fam] : families_) {
      out += "# HELP " + name + " " + escape(fam.help, false) + "\n";
      out += "# TYPE " + name + " " + fam.kind + "\n";
      for (auto& line : fam.samples)
        out += line;
    }
    if (skipped_ > 0)
      out.append("# mayfly: ")
        .append(std::to_string(skipped_))
        .append(" samples skipped (name or series clash)\n");
    if (undescribed_ > 0)
      out.append("# mayfly: ")
        .append(std::to_string(undescribed_))
        .append(" figures without a description (untyped)\n");
    return out;
  }

private:
  std::map<std::string, std::vector<pattern>, std::less<>> patterns_;
  std::vector<std::string> path_; // keys from the root to where the walk is
  std::map<std::string, family> families_;
  size_t skipped_ = 0;
  size_t undescribed_ = 0;

  /// Whether `parts` (a pattern, maybe shortened) matches the first
  /// `parts.size()` keys of `path_`.
  bool prefix_matches(const std::vector<std::string_view>& parts,
                      size_t n) const {
    for (size_t i = 0; i < n; ++i)
      if (label_of(parts[i]).empty() && parts[i] != path_[i])
        return false;
    return true;
  }

  /// The description of the leaf at `path_`, or nullopt.
  std::optional<match> find() const {
    if (path_.empty())
      return std::nullopt;
    auto it = patterns_.find(path_.front());
    if (it == patterns_.end())
      return std::nullopt;
    auto n = path_.size();
    for (auto& p : it->second) {
      auto& parts = p.parts;
      bool dist = p.info->kind == metric_kind::distribution;
      std::string_view q;
      if (!dist) {
        if (parts.size() != n || !prefix_matches(parts, n))
          continue;
      } else if (ends_with(parts.back(), "_")) {
        // x_ covers the flat keys x_p50, x_p99, x_max.
        if (parts.size() != n || !prefix_matches(parts, n - 1)
            || !starts_with(path_.back(), parts.back()))
          continue;
        q = quantile_of(
          std::string_view{path_.back()}.substr(parts.back().size()));
        if (q.empty())
          continue;
      } else {
        // x covers the object x with keys p50, p99, max.
        if (parts.size() + 1 != n || !prefix_matches(parts, n - 1))
          continue;
        q = quantile_of(path_.back());
        if (q.empty())
          continue;
      }
      match m;
      m.info = p.info;
      m.quantile = q;
      for (size_t i = 0; i < parts.size(); ++i) {
        auto l = label_of(parts[i]);
        if (!l.empty()) {
          m.labels.push_back({std::string{l}, path_[i]});
          m.where.append("/<").append(l).append(">");
        } else {
          auto part = parts[i];
          if (dist && i + 1 == parts.size() && ends_with(part, "_"))
            part.remove_suffix(1);
          m.name.emplace_back(part);
          m.where.append("/").append(parts[i]);
        }
      }
      return m;
    }
    return std::nullopt;
  }

  /// Adds one sample of family `mayfly_` + `parts` joined by `_`.
  void add(const std::vector<std::string>& parts, std::string_view kind,
           const std::vector<label>& labels, const std::string& value,
           const std::string& help) {
    std::string name = "mayfly";
    for (auto& p : parts) {
      // Appends, not `"_" + std::string`: GCC 12 at -O3 warns (falsely,
      // -Wrestrict) on operator+(const char*, std::string&&).
      name += '_';
      name += sanitize_name(p);
    }
    if (kind == "counter" && !ends_with(name, "_total"))
      name += "_total";
    std::string rendered;
    if (!labels.empty()) {
      rendered += "{";
      for (size_t i = 0; i < labels.size(); ++i) {
        if (i > 0)
          rendered += ",";
        rendered += labels[i].name + "=\"" + escape(labels[i].value, true)
                    + "\"";
      }
      rendered += "}";
    }
    auto [it, fresh]
      = families_.try_emplace(name, family{std::string{kind}, help, {}, {}});
    auto& fam = it->second;
    if ((!fresh && fam.kind != kind) || !fam.series.insert(rendered).second) {
      ++skipped_;
      return;
    }
    fam.samples.push_back(name + rendered + " " + value + "\n");
  }

  /// A latency histogram object, `{"bounds_us": [...], "counts": [...one
  /// more...], "count", "sum_us"}` (runtime/latency_histogram.hpp).
  static bool is_histogram(const json& v) {
    if (!v.is_object())
      return false;
    auto b = v.find("bounds_us");
    auto c = v.find("counts");
    auto sum = v.find("sum_us");
    return b != v.end() && c != v.end() && sum != v.end() && b->is_array()
           && c->is_array() && c->size() == b->size() + 1
           && sum->is_number();
  }

  /// A Prometheus histogram from a latency histogram object: cumulative
  /// `_bucket{le}` (seconds) ending with `+Inf`, `_sum` (seconds),
  /// `_count`.
  void add_histogram(match& m, const json& h) {
    if (!is_histogram(h)) {
      ++skipped_;
      return;
    }
    std::string name = "mayfly";
    for (auto& p : m.name) {
      name += '_';
      name += sanitize_name(p);
    }
    if (ends_with(name, "_us"))
      name.resize(name.size() - 3);
    name += "_seconds";
    std::string rendered;
    for (auto& l : m.labels) {
      rendered += rendered.empty() ? "" : ",";
      rendered += l.name + "=\"" + escape(l.value, true) + "\"";
    }
    std::string help{m.info->help};
    help.append(" (").append(m.where).append(")");
    auto [it, fresh]
      = families_.try_emplace(name, family{"histogram", help, {}, {}});
    auto& fam = it->second;
    if ((!fresh && fam.kind != "histogram")
        || !fam.series.insert(rendered).second) {
      ++skipped_;
      return;
    }
    auto sep = rendered.empty() ? "" : ",";
    const auto& bounds = h["bounds_us"];
    const auto& counts = h["counts"];
    uint64_t cumulative = 0;
    for (size_t i = 0; i < counts.size(); ++i) {
      cumulative += counts[i].is_number_unsigned() ? counts[i].get<uint64_t>()
                                                   : 0;
      auto le = i < bounds.size()
                  ? format_double(bounds[i].get<double>() / 1e6)
                  : std::string{"+Inf"};
      fam.samples.push_back(name + "_bucket{" + rendered + sep + "le=\"" + le
                            + "\"} " + std::to_string(cumulative) + "\n");
    }
    auto braces = rendered.empty() ? std::string{} : "{" + rendered + "}";
    fam.samples.push_back(name + "_sum" + braces + " "
                          + format_double(h["sum_us"].get<double>() / 1e6)
                          + "\n");
    fam.samples.push_back(name + "_count" + braces + " "
                          + std::to_string(cumulative) + "\n");
  }

  void walk_object(const json& obj) {
    if (!obj.is_object())
      return;
    // String figures of this object: labels of one `_info` gauge.
    std::vector<label> info;
    std::optional<match> info_at;
    for (auto& [key, value] : obj.items()) {
      path_.push_back(key);
      if (value.is_object()) {
        auto m = find();
        if (m && m->info->kind == metric_kind::histogram)
          add_histogram(*m, value);
        else
          walk_object(value);
      }
      else if (value.is_number() || value.is_boolean())
        leaf(value);
      else if (value.is_string()) {
        auto m = find();
        if (!m)
          ++undescribed_;
        else if (m->info->kind == metric_kind::text) {
          auto name = sanitize_label_name(key);
          bool taken = false;
          for (auto& l : m->labels)
            taken = taken || l.name == name;
          for (auto& l : info)
            taken = taken || l.name == name;
          if (!taken)
            info.push_back({name, value.get<std::string>()});
          if (!info_at)
            info_at = std::move(m);
        }
      }
      // Arrays and nulls: left out (none in schema 1).
      path_.pop_back();
    }
    if (info.empty())
      return;
    // The object's own name and labels: those of a string figure in it,
    // less its last part.
    auto parts = info_at->name;
    parts.pop_back();
    parts.push_back("info");
    auto labels = info_at->labels;
    labels.insert(labels.end(), info.begin(), info.end());
    auto where = info_at->where.substr(0, info_at->where.rfind('/'));
    add(parts, "gauge", labels, "1",
        "string figures of " + (where.empty() ? "/" : where)
          + " as labels (docs/stats.md)");
  }

  void leaf(const json& value) {
    auto m = find();
    if (!m) {
      // A defect: every figure is described
      // (net.StatsEndpoint.EveryFigureIsDescribed). Still
      // exported, untyped, so that nothing silently disappears.
      ++undescribed_;
      std::string where;
      for (auto& p : path_)
        where.append("/").append(p);
      add(path_, "untyped", {}, format_value(value, 1.0),
          "undescribed statistic " + where);
      return;
    }
    auto& info = *m->info;
    double divisor = 1.0;
    std::string_view kind = "gauge";
    switch (info.kind) {
      case metric_kind::identifier:
      case metric_kind::text:
        return;
      case metric_kind::histogram: // a number where an object belongs
        ++skipped_;
        return;
      case metric_kind::counter:
        kind = value.is_boolean() ? "gauge" : "counter";
        break;
      default:
        break;
    }
    // Time in seconds: `uptime_s` -> `uptime_seconds`, values scaled.
    if (auto per_second = units_per_second(info.unit); per_second > 0) {
      auto& last = m->name.back();
      std::string suffix = "_" + std::string{info.unit};
      if (ends_with(last, suffix))
        last.resize(last.size() - suffix.size());
      last += "_seconds";
      divisor = per_second;
    }
    std::string help{info.help};
    if (!info.unit.empty() && divisor == 1.0)
      help.append(" [").append(info.unit).append("]");
    help.append(" (").append(m->where).append(")");
    if (!m->quantile.empty())
      m->labels.push_back({"quantile", std::string{m->quantile}});
    add(m->name, kind, m->labels, format_value(value, divisor), help);
  }
};

} // namespace

std::vector<metric_section> builtin_metric_sections() {
  return {stats_registry::schema_metrics,
          runtime_metrics,
          pool_class_metrics,
          dedicated_pool_metrics,
          arena_pool_metrics,
          binaries_metrics,
          detach_metrics,
          holders_metrics,
          remote_metrics,
          handler_metrics,
          udp_endpoint_metrics,
          stats_endpoint_metrics};
}

std::string to_prometheus(const nlohmann::json& stats,
                          std::span<const metric_section> described) {
  if (!stats.is_object())
    return "# mayfly: not a statistics document\n";
  converter c{described};
  c.walk(stats);
  return c.render();
}

} // namespace mayfly
