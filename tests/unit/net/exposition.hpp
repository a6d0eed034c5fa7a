#pragma once

// The Prometheus text-format checker of the net tests: declared here, defined
// in prometheus_test.cpp (the same test binary).

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
/// (see prometheus_test.cpp) and reads every family's type and every series.
exposition parse_exposition(const std::string& text);

} // namespace mayfly::test
