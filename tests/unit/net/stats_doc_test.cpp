// docs/stats.md against the metric descriptions (runtime/metrics.hpp): each
// table between `<!-- metrics:ID -->` and `<!-- /metrics:ID -->` must be
// exactly `markdown_table` of the built-in section ID. With
// MAYFLY_REGENERATE_STATS_DOC=1 the test rewrites the tables instead.

#include <mayfly/net/prometheus.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

namespace {

using namespace mayfly;

const char* kDoc = MAYFLY_SOURCE_DIR "/docs/stats.md";
const char* kRegenerate
  = "MAYFLY_REGENERATE_STATS_DOC=1 build/dev/tests/mayfly_net_tests "
    "--gtest_filter='StatsDoc.*'";

std::string read_file(const char* path) {
  std::ifstream in{path, std::ios::binary};
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string begin_marker(std::string_view id) {
  return "<!-- metrics:" + std::string{id} + " -->\n";
}

std::string end_marker(std::string_view id) {
  return "<!-- /metrics:" + std::string{id} + " -->";
}

TEST(StatsDoc, TablesAreGeneratedFromTheDescriptions) {
  auto doc = read_file(kDoc);
  ASSERT_FALSE(doc.empty()) << "cannot read " << kDoc;
  bool regenerate = std::getenv("MAYFLY_REGENERATE_STATS_DOC") != nullptr;
  std::set<std::string> ids;
  std::string stale;
  for (auto& section : builtin_metric_sections()) {
    if (section.id == "schema") // described in prose (Conventions)
      continue;
    ids.emplace(section.id);
    auto begin = doc.find(begin_marker(section.id));
    auto end = doc.find(end_marker(section.id));
    if (begin == std::string::npos || end == std::string::npos
        || end < begin) {
      ADD_FAILURE() << kDoc << " has no table for section \"" << section.id
                    << "\": add the lines\n"
                    << begin_marker(section.id) << end_marker(section.id)
                    << "\nwhere it belongs, then run " << kRegenerate;
      continue;
    }
    begin += begin_marker(section.id).size();
    auto want = markdown_table(section);
    if (doc.compare(begin, end - begin, want) != 0) {
      stale.append(" ").append(section.id);
      doc.replace(begin, end - begin, want);
    }
  }
  // No table for a section that no longer exists.
  for (size_t pos = 0; (pos = doc.find("<!-- metrics:", pos)) != doc.npos;) {
    pos += 13;
    auto id = doc.substr(pos, doc.find(' ', pos) - pos);
    EXPECT_TRUE(ids.count(id) > 0)
      << kDoc << " has a table for an unknown section \"" << id << "\"";
  }
  if (stale.empty())
    return;
  if (regenerate) {
    std::ofstream{kDoc, std::ios::binary | std::ios::trunc} << doc;
    std::printf("regenerated in %s:%s\n", kDoc, stale.c_str());
    return;
  }
  ADD_FAILURE() << kDoc << " disagrees with the metric descriptions in:"
                << stale << "\nRegenerate its tables with\n  " << kRegenerate;
}

} // namespace
