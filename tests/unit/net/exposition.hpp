#pragma once

// The Prometheus exposition checker of the net tests (defined in
// prometheus_test.cpp, used by every test that reads /metrics).

#include <map>
#include <string>

namespace mayfly::test {

/// What `parse_exposition` found: the type of every family, the value of
/// every series (keyed "name{labels as written}"), the first error.
struct exposition {
  std::map<std::string, std::string> types;
  std::map<std::string, double> series;
  std::string error;
};

/// Checks `text` against the exposition format 0.0.4 as mayfly writes it
/// (see the definition for the rules) and collects its families and series.
exposition parse_exposition(const std::string& text);

} // namespace mayfly::test
