// docs/guide.md promises that every code snippet comes from a compiled
// example: each block is introduced by "`FILE`, marker `NAME`:" and must be
// exactly the lines between `// --8<-- [start:NAME]` and `// --8<--
// [end:NAME]` in FILE, with their common indentation removed (and the
// marker lines of regions nested inside left out). This test
// holds the guide to that promise.

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <regex>
#include <string>
#include <vector>

namespace {

using lines = std::vector<std::string>;

lines read_lines(const std::string& path) {
  std::ifstream in{path};
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  lines out;
  for (std::string line; std::getline(in, line);)
    out.push_back(line);
  return out;
}

// The marked region of `file`, dedented; empty with a failure if missing.
lines region(const std::string& file, const std::string& name) {
  auto src = read_lines(std::string{MAYFLY_SOURCE_DIR} + "/" + file);
  auto start = "// --8<-- [start:" + name + "]";
  auto end = "// --8<-- [end:" + name + "]";
  auto is = [](const std::string& marker) {
    return [&marker](const std::string& l) {
      return l.find(marker) != std::string::npos;
    };
  };
  auto first = std::find_if(src.begin(), src.end(), is(start));
  if (first == src.end()) {
    ADD_FAILURE() << file << ": no marker " << start;
    return {};
  }
  auto last = std::find_if(first + 1, src.end(), is(end));
  if (last == src.end()) {
    ADD_FAILURE() << file << ": no marker " << end;
    return {};
  }
  // Markers of regions nested inside this one are not part of it.
  lines out;
  std::copy_if(first + 1, last, std::back_inserter(out),
               [](const std::string& l) {
                 return l.find("// --8<-- [") == std::string::npos;
               });
  size_t indent = std::string::npos;
  for (auto& l : out)
    if (auto pos = l.find_first_not_of(' '); pos != std::string::npos)
      indent = std::min(indent, pos);
  for (auto& l : out)
    l = l.size() >= indent ? l.substr(indent) : std::string{};
  return out;
}

TEST(GuideSnippets, EverySnippetIsTheMarkedRegionOfItsExample) {
  auto guide = read_lines(std::string{MAYFLY_SOURCE_DIR} + "/docs/guide.md");
  const std::regex intro{"^`([^`]+)`, marker `([^`]+)`:$"};
  int checked = 0;
  for (size_t i = 0; i < guide.size(); ++i) {
    std::smatch m;
    if (!std::regex_match(guide[i], m, intro))
      continue;
    std::string file = m[1], name = m[2];
    size_t open = i + 1;
    while (open < guide.size() && guide[open].empty())
      ++open;
    ASSERT_LT(open, guide.size());
    ASSERT_EQ(guide[open], "```cpp") << "guide line " << open + 1;
    lines shown;
    size_t j = open + 1;
    for (; j < guide.size() && guide[j] != "```"; ++j)
      shown.push_back(guide[j]);
    auto expected = region(file, name);
    for (size_t k = 0; k < std::max(shown.size(), expected.size()); ++k) {
      auto got = k < shown.size() ? shown[k] : "<end of snippet>";
      auto want = k < expected.size() ? expected[k] : "<end of region>";
      if (got != want) {
        ADD_FAILURE() << "docs/guide.md:" << open + 2 + k << " (" << file
                      << ", marker " << name << ")\n  guide:   " << got
                      << "\n  example: " << want;
        break;
      }
    }
    ++checked;
    i = j;
  }
  // The guide has a dozen snippets: finding none means the format changed
  // and this test would check nothing.
  EXPECT_GE(checked, 8);
}

} // namespace
