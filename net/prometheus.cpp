#include <mayfly/net/prometheus.hpp>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <map>
#include <set>
#include <string_view>
#include <vector>

namespace mayfly {

namespace {

using json = nlohmann::json;

enum class metric_kind { counter, gauge, histogram };

const char* to_string(metric_kind k) noexcept {
  return k == metric_kind::counter ? "counter"
         : k == metric_kind::gauge ? "gauge"
                                   : "histogram";
}

/// A latency histogram as runtime/latency_histogram.hpp writes it:
/// `{"bounds_us": [...], "counts": [...one more...], "count", "sum_us"}`.
bool is_histogram(const json& v) {
  if (!v.is_object())
    return false;
  auto b = v.find("bounds_us");
  auto c = v.find("counts");
  auto sum = v.find("sum_us");
  return b != v.end() && c != v.end() && sum != v.end() && b->is_array()
         && c->is_array() && c->size() == b->size() + 1 && sum->is_number();
}

struct label {
  std::string name;
  std::string value;
};

/// A key at this position of the document is a name chosen at run time (a
/// handler, an endpoint...): it becomes the value of `label`. `leaf` is the
/// type when the key holds a number directly (refs buckets, status codes).
struct label_rule {
  std::vector<std::string_view> pattern; // "*" matches any key
  std::string_view label;
  metric_kind leaf;
};

// The list in the file comment of prometheus.hpp and in docs/stats.md.
const std::vector<label_rule>& label_rules() {
  static const std::vector<label_rule> rules{
    {{"handlers", "*"}, "handler", metric_kind::gauge},
    {{"net", "*"}, "endpoint", metric_kind::gauge},
    {{"pools", "*"}, "pool", metric_kind::gauge},
    {{"pools", "*", "binaries", "refs", "*"}, "refs", metric_kind::gauge},
    {{"net", "*", "responses", "*"}, "code", metric_kind::counter},
    {{"net", "*", "threads", "*"}, "thread", metric_kind::gauge},
    {{"holders", "by_holder", "*"}, "holder", metric_kind::gauge},
  };
  return rules;
}

const label_rule* match_rule(const std::vector<std::string>& path) {
  for (auto& r : label_rules()) {
    if (r.pattern.size() != path.size())
      continue;
    bool ok = true;
    for (size_t i = 0; i < path.size() && ok; ++i)
      ok = r.pattern[i] == "*" || r.pattern[i] == path[i];
    // Only the last element may be the dynamic key this rule is about.
    if (ok && r.pattern.back() == "*")
      return &r;
  }
  return nullptr;
}

bool starts_with(std::string_view s, std::string_view p) noexcept {
  return s.substr(0, p.size()) == p;
}

bool ends_with(std::string_view s, std::string_view p) noexcept {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

// Time units in a key: the suffix and how many make a second. (Dividing
// rather than multiplying by 1e-6 prints 0.006373597, not
// 0.006373596999999999.)
struct time_unit {
  std::string_view suffix;
  double per_second;
};

constexpr time_unit kTimeUnits[] = {
  {"_s", 1.0}, {"_ms", 1e3}, {"_us", 1e6}, {"_ns", 1e9}};

/// The counter-or-gauge rule of the file comment. `section` is the first
/// key of the path ("runtime", "pools"...), `key` the leaf's own key.
metric_kind classify(std::string_view section, std::string_view key) {
  if (section == "runtime" || section == "holders")
    return metric_kind::gauge;
  static const std::set<std::string_view> exact{
    "capacity",      "in_use",          "in_flight", "live",
    "leases_out",    "blocks_in_use",   "threads",   "schema",
    "receive_threads", "long_lived"};
  if (exact.count(key) > 0)
    return metric_kind::gauge;
  for (auto p : {"peak", "max_", "live_"})
    if (starts_with(key, p))
      return metric_kind::gauge;
  for (auto s : {"_peak", "_live", "_size", "_limit", "_avg", "_per_datagram",
                 "_bytes"})
    if (ends_with(key, s))
      return metric_kind::gauge;
  for (auto& u : kTimeUnits)
    if (ends_with(key, u.suffix))
      return metric_kind::gauge;
  return metric_kind::counter;
}

/// Identifiers that are numbers but not measurements.
bool is_identifier(std::string_view key) {
  return key == "oldest_holder" || key == "cpu";
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

/// "p50" -> "0.5", "bytes_p99" -> "0.99", "p999" -> "0.999", "p5" ->
/// "0.05", "p100" -> "1"; `prefix` receives what comes before the "p".
/// Empty when `key` is not a percentile key.
std::string percentile(std::string_view key, std::string& prefix) {
  auto pos = key.rfind('p');
  if (pos == std::string_view::npos || pos + 1 >= key.size())
    return {};
  if (pos > 0 && key[pos - 1] != '_')
    return {};
  auto digits = key.substr(pos + 1);
  for (char c : digits)
    if (c < '0' || c > '9')
      return {};
  prefix = std::string{key.substr(0, pos)};
  if (digits == "100")
    return "1";
  std::string frac{digits};
  if (frac.size() < 2)
    frac.insert(frac.begin(), 2 - frac.size(), '0');
  while (frac.size() > 1 && frac.back() == '0')
    frac.pop_back();
  if (frac == "0")
    return "0";
  return "0." + frac;
}

struct family {
  metric_kind kind;
  std::string help;
  std::vector<std::string> samples; // rendered lines
  std::set<std::string> series;     // rendered label sets
};

class converter {
public:
  void walk(const json& obj) {
    walk_object(obj);
  }

  std::string render() const {
    std::string out;
    for (auto& [name, fam] : families_) {
      out += "# HELP " + name + " " + escape(fam.help, false) + "\n";
      out += "# TYPE " + name + " " + to_string(fam.kind) + "\n";
      for (auto& line : fam.samples)
        out += line;
    }
    if (skipped_ > 0)
      out.append("# mayfly: ")
        .append(std::to_string(skipped_))
        .append(" samples skipped (name or series clash)\n");
    return out;
  }

private:
  // Where the walk is: the real keys, the keys as written in HELP text
  // (dynamic ones as <label>), the parts of the metric name and the labels.
  std::vector<std::string> path_;
  std::vector<std::string> pattern_;
  std::vector<std::string> name_;
  std::vector<label> labels_;

  std::map<std::string, family> families_;
  size_t skipped_ = 0;

  std::string help_for(std::string_view last) const {
    std::string h = "mayfly statistic ";
    for (auto& p : pattern_)
      h += "/" + p;
    h += "/";
    h += last;
    h += " (docs/stats.md)";
    return h;
  }

  /// Adds one sample. `parts` is the metric name without "mayfly_" and
  /// suffixes; `kind` its type; `value` the JSON leaf.
  void add(const std::vector<std::string>& parts, metric_kind kind,
           const std::vector<label>& labels, const json& value,
           const std::string& help, bool is_info = false) {
    std::string name = "mayfly";
    for (auto& p : parts) {
      // Appends, not `"_" + std::string`: GCC 12 at -O3 warns (falsely,
      // -Wrestrict) on operator+(const char*, std::string&&).
      name += '_';
      name += sanitize_name(p);
    }
    double divisor = 1.0;
    if (!is_info) {
      for (auto& u : kTimeUnits) {
        if (ends_with(name, u.suffix)) {
          name.resize(name.size() - u.suffix.size());
          name += "_seconds";
          divisor = u.per_second;
          break;
        }
      }
    }
    if (kind == metric_kind::counter && !ends_with(name, "_total"))
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
    auto [it, fresh] = families_.try_emplace(name, family{kind, help, {}, {}});
    auto& fam = it->second;
    if ((!fresh && fam.kind != kind) || !fam.series.insert(rendered).second) {
      ++skipped_;
      return;
    }
    fam.samples.push_back(name + rendered + " "
                          + (is_info ? std::string{"1"}
                                     : format_value(value, divisor))
                          + "\n");
  }

  /// A Prometheus histogram from a latency histogram object: cumulative
  /// `_bucket{le}` (seconds) ending with `+Inf`, `_sum` (seconds),
  /// `_count`.
  void add_histogram(const std::vector<std::string>& parts,
                     const std::vector<label>& labels, const json& h,
                     const std::string& help) {
    std::string name = "mayfly";
    for (auto& p : parts) {
      name += '_';
      name += sanitize_name(p);
    }
    if (ends_with(name, "_us"))
      name.resize(name.size() - 3);
    name += "_seconds";
    std::string rendered;
    for (auto& l : labels) {
      rendered += rendered.empty() ? "" : ",";
      rendered += l.name + "=\"" + escape(l.value, true) + "\"";
    }
    auto [it, fresh] = families_.try_emplace(
      name, family{metric_kind::histogram, help, {}, {}});
    auto& fam = it->second;
    if ((!fresh && fam.kind != metric_kind::histogram)
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

  bool has_label(std::string_view name) const {
    for (auto& l : labels_)
      if (l.name == name)
        return true;
    return false;
  }

  void walk_object(const json& obj) {
    if (!obj.is_object())
      return;
    // Quantile groups: prefixes P for which a key P + "p<digits>" exists;
    // P + "max" then counts as quantile 1.
    std::set<std::string> quantile_prefixes;
    for (auto& [key, value] : obj.items()) {
      std::string prefix;
      if (value.is_number() && !percentile(key, prefix).empty())
        quantile_prefixes.insert(prefix);
    }
    std::vector<label> info;
    for (auto& [key, value] : obj.items()) {
      path_.push_back(key);
      if (auto* rule = match_rule(path_)) {
        // A dynamic key: a label, not a part of the name.
        std::string placeholder{"<"};
        placeholder.append(rule->label).append(">");
        labels_.push_back({std::string{rule->label}, key});
        if (value.is_object()) {
          pattern_.push_back(placeholder);
          walk_object(value);
          pattern_.pop_back();
        } else if (value.is_number() || value.is_boolean()) {
          auto kind = value.is_boolean() ? metric_kind::gauge : rule->leaf;
          add(name_, kind, labels_, value, help_for(placeholder));
        }
        labels_.pop_back();
        path_.pop_back();
        continue;
      }
      if (is_histogram(value)) {
        auto parts = name_;
        parts.push_back(key);
        add_histogram(parts, labels_, value,
                      help_for(key));
      } else if (value.is_object()) {
        name_.push_back(key);
        pattern_.push_back(key);
        walk_object(value);
        pattern_.pop_back();
        name_.pop_back();
      } else if (value.is_number() || value.is_boolean()) {
        leaf(key, value, quantile_prefixes);
      } else if (value.is_string()) {
        auto name = sanitize_label_name(key);
        if (!has_label(name))
          info.push_back({name, value.get<std::string>()});
      }
      // Arrays and nulls: left out (none in schema 1).
      path_.pop_back();
    }
    if (!info.empty()) {
      auto labels = labels_;
      labels.insert(labels.end(), info.begin(), info.end());
      auto parts = name_;
      parts.push_back("info");
      std::string help = "mayfly statistic ";
      for (auto& p : pattern_)
        help += "/" + p;
      help += " (string fields as labels, docs/stats.md)";
      add(parts, metric_kind::gauge, labels, json{}, help, true);
    }
  }

  void leaf(const std::string& key, const json& value,
            const std::set<std::string>& quantile_prefixes) {
    if (is_identifier(key))
      return;
    std::string prefix;
    auto q = value.is_number() ? percentile(key, prefix) : std::string{};
    if (q.empty() && ends_with(key, "max")) {
      auto p = key.substr(0, key.size() - 3);
      if (quantile_prefixes.count(p) > 0) {
        prefix = p;
        q = "1";
      }
    }
    if (!q.empty() && quantile_prefixes.count(prefix) > 0) {
      auto parts = name_;
      if (!prefix.empty())
        parts.push_back(prefix.substr(0, prefix.size() - 1)); // drop '_'
      auto labels = labels_;
      labels.push_back({"quantile", q});
      add(parts, metric_kind::gauge, labels, value,
          help_for(prefix + "{p50,p99,max}"));
      return;
    }
    auto kind = value.is_boolean()
                  ? metric_kind::gauge
                  : classify(path_.empty() ? std::string_view{} : path_[0],
                             key);
    auto parts = name_;
    parts.push_back(key);
    add(parts, kind, labels_, value, help_for(key));
  }
};

} // namespace

std::string to_prometheus(const nlohmann::json& stats) {
  if (!stats.is_object())
    return "# mayfly: not a statistics document\n";
  converter c;
  c.walk(stats);
  return c.render();
}

} // namespace mayfly
