#include <mayfly/runtime/config.hpp>

#include <ostream>
#include <string>

#include <gtest/gtest.h>

using mayfly::config_reader;
using mayfly::errc;
using mayfly::memory_config;
using mayfly::parse_memory_config;
using json = nlohmann::json;

TEST(MemoryConfig, EmptyObjectGivesTheDefaults) {
  auto res = parse_memory_config(json::object());
  ASSERT_TRUE(res) << res.error().message();
  auto& b = res->buffers;
  EXPECT_EQ(b.standard_slot_size, 2048u);
  EXPECT_EQ(b.standard_capacity, 8192u);
  EXPECT_EQ(b.jumbo_slot_size, 65536u);
  EXPECT_EQ(b.jumbo_capacity, 128u);
  EXPECT_TRUE(b.huge_pages);
  EXPECT_FALSE(b.prefault); // resident memory grows with load
  auto& a = res->arenas;
  EXPECT_EQ(a.block_size, 16384u);
  EXPECT_EQ(a.capacity, 2048u);
  EXPECT_EQ(a.max_arena_bytes, size_t{1} << 20);
  EXPECT_TRUE(a.huge_pages);
  EXPECT_FALSE(a.prefault);
  // Empty sections are the same as absent ones.
  auto sections = parse_memory_config(
    json{{"buffers", json::object()}, {"arenas", json::object()}});
  ASSERT_TRUE(sections);
  EXPECT_EQ(sections->buffers.standard_capacity, 8192u);
}

TEST(MemoryConfig, EveryFieldIsRead) {
  auto j = json::parse(R"({
    "buffers": {"standard_slot_size": 1500, "standard_capacity": 100,
                "jumbo_slot_size": 9000, "jumbo_capacity": 10,
                "huge_pages": false, "prefault": false},
    "arenas": {"block_size": 8192, "capacity": 64, "max_arena_bytes": 65536}
  })");
  auto res = parse_memory_config(j);
  ASSERT_TRUE(res) << res.error().message();
  EXPECT_EQ(res->buffers.standard_slot_size, 1500u);
  EXPECT_EQ(res->buffers.standard_capacity, 100u);
  EXPECT_EQ(res->buffers.jumbo_slot_size, 9000u);
  EXPECT_EQ(res->buffers.jumbo_capacity, 10u);
  EXPECT_FALSE(res->buffers.huge_pages);
  EXPECT_FALSE(res->buffers.prefault);
  EXPECT_EQ(res->arenas.block_size, 8192u);
  EXPECT_EQ(res->arenas.capacity, 64u);
  EXPECT_EQ(res->arenas.max_arena_bytes, 65536u);
  // The arena pool follows the buffers' page settings.
  EXPECT_FALSE(res->arenas.huge_pages);
  EXPECT_FALSE(res->arenas.prefault);
}

TEST(MemoryConfig, FieldsOverrideTheGivenDefaults) {
  memory_config base;
  base.buffers.standard_capacity = 77;
  base.arenas.capacity = 5;
  auto res = parse_memory_config(json{{"arenas", {{"capacity", 9}}}}, base);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->buffers.standard_capacity, 77u);
  EXPECT_EQ(res->arenas.capacity, 9u);
}

TEST(MemoryConfig, JumboCanBeDisabled) {
  auto zero_size
    = parse_memory_config(json{{"buffers", {{"jumbo_slot_size", 0}}}});
  ASSERT_TRUE(zero_size) << zero_size.error().message();
  EXPECT_EQ(zero_size->buffers.jumbo_slot_size, 0u);
  auto zero_capacity = parse_memory_config(
    json{{"buffers", {{"jumbo_slot_size", 100}, {"jumbo_capacity", 0}}}});
  ASSERT_TRUE(zero_capacity) << zero_capacity.error().message();
}

TEST(MemoryConfig, BoundaryValuesAreAccepted) {
  auto res = parse_memory_config(json::parse(R"({
    "buffers": {"standard_slot_size": 64, "standard_capacity": 1,
                "jumbo_slot_size": 65, "jumbo_capacity": 1},
    "arenas": {"block_size": 128, "capacity": 1, "max_arena_bytes": 128}
  })"));
  ASSERT_TRUE(res) << res.error().message();
  EXPECT_EQ(res->buffers.standard_slot_size, 64u);
  EXPECT_EQ(res->arenas.max_arena_bytes, 128u);
}

struct invalid_case {
  const char* id; // names the ctest entry
  const char* json_text;
  const char* subject;
};

// CTest names each case after what this prints (gtest_discover_tests).
void PrintTo(const invalid_case& c, std::ostream* os) {
  *os << c.id;
}

class MemoryConfigInvalid : public ::testing::TestWithParam<invalid_case> {};

TEST_P(MemoryConfigInvalid, NamesTheField) {
  auto& c = GetParam();
  auto res = parse_memory_config(json::parse(c.json_text));
  ASSERT_FALSE(res) << c.json_text;
  EXPECT_EQ(res.error().code, errc::invalid_config);
  EXPECT_EQ(res.error().subject, c.subject) << c.json_text;
  EXPECT_STRNE(res.error().what, "");
  EXPECT_EQ(res.error().message(),
            std::string{c.subject} + ": " + res.error().what);
}

INSTANTIATE_TEST_SUITE_P(
  Field, MemoryConfigInvalid,
  ::testing::Values(
    invalid_case{"root_array", R"([])", "(root)"},
    invalid_case{"root_number", R"(42)", "(root)"},
    invalid_case{"unknown_top_level", R"({"bogus": 1})", "bogus"},
    invalid_case{"buffers_not_object", R"({"buffers": 1})", "buffers"},
    invalid_case{"arenas_not_object", R"({"arenas": [1]})", "arenas"},
    invalid_case{"unknown_buffers_field", R"({"buffers": {"bogus": 1}})",
                 "buffers.bogus"},
    invalid_case{"unknown_arenas_field", R"({"arenas": {"bogus": 1}})",
                 "arenas.bogus"},
    invalid_case{"standard_slot_size_too_small",
                 R"({"buffers": {"standard_slot_size": 63}})",
                 "buffers.standard_slot_size"},
    invalid_case{"standard_slot_size_negative",
                 R"({"buffers": {"standard_slot_size": -1}})",
                 "buffers.standard_slot_size"},
    invalid_case{"standard_slot_size_fraction",
                 R"({"buffers": {"standard_slot_size": 2048.5}})",
                 "buffers.standard_slot_size"},
    invalid_case{"standard_slot_size_string",
                 R"({"buffers": {"standard_slot_size": "2048"}})",
                 "buffers.standard_slot_size"},
    invalid_case{"standard_slot_size_too_large",
                 R"({"buffers": {"standard_slot_size": 4294967296}})",
                 "buffers.standard_slot_size"},
    invalid_case{"standard_capacity_zero",
                 R"({"buffers": {"standard_capacity": 0}})",
                 "buffers.standard_capacity"},
    invalid_case{"standard_capacity_too_large",
                 R"({"buffers": {"standard_capacity": 4294967295}})",
                 "buffers.standard_capacity"},
    invalid_case{"standard_capacity_bool",
                 R"({"buffers": {"standard_capacity": true}})",
                 "buffers.standard_capacity"},
    invalid_case{"standard_capacity_null",
                 R"({"buffers": {"standard_capacity": null}})",
                 "buffers.standard_capacity"},
    invalid_case{"jumbo_slot_size_equal",
                 R"({"buffers": {"jumbo_slot_size": 2048}})",
                 "buffers.jumbo_slot_size"},
    invalid_case{"jumbo_slot_size_smaller",
                 R"({"buffers": {"jumbo_slot_size": 1000}})",
                 "buffers.jumbo_slot_size"},
    invalid_case{"jumbo_slot_size_array",
                 R"({"buffers": {"jumbo_slot_size": [65536]}})",
                 "buffers.jumbo_slot_size"},
    invalid_case{"jumbo_capacity_negative",
                 R"({"buffers": {"jumbo_capacity": -5}})",
                 "buffers.jumbo_capacity"},
    invalid_case{"jumbo_capacity_too_large",
                 R"({"buffers": {"jumbo_capacity": 4294967295}})",
                 "buffers.jumbo_capacity"},
    invalid_case{"huge_pages_number", R"({"buffers": {"huge_pages": 1}})",
                 "buffers.huge_pages"},
    invalid_case{"prefault_string", R"({"buffers": {"prefault": "yes"}})",
                 "buffers.prefault"},
    invalid_case{"block_size_too_small", R"({"arenas": {"block_size": 127}})",
                 "arenas.block_size"},
    invalid_case{"block_size_too_large",
                 R"({"arenas": {"block_size": 4294967296}})",
                 "arenas.block_size"},
    invalid_case{"arena_capacity_zero", R"({"arenas": {"capacity": 0}})",
                 "arenas.capacity"},
    invalid_case{"arena_capacity_fraction", R"({"arenas": {"capacity": 1.0}})",
                 "arenas.capacity"},
    invalid_case{"max_arena_bytes_too_small",
                 R"({"arenas": {"max_arena_bytes": 127}})",
                 "arenas.max_arena_bytes"},
    invalid_case{"max_arena_bytes_below_payload",
                 R"({"arenas": {"max_arena_bytes": 1000}})",
                 "arenas.max_arena_bytes"},
    invalid_case{"max_arena_bytes_below_custom_payload",
                 R"({"arenas": {"block_size": 8192, "max_arena_bytes": 8127}})",
                 "arenas.max_arena_bytes"},
    // The first error wins, in reading order.
    invalid_case{"first_error_in_field_order",
                 R"({"buffers": {"standard_capacity": 0, "prefault": 1}})",
                 "buffers.standard_capacity"},
    invalid_case{"first_error_in_section_order",
                 R"({"buffers": {"prefault": 1}, "arenas": {"capacity": 0}})",
                 "buffers.prefault"}));

TEST(MemoryConfig, PrefixNamesTheSection) {
  auto res = parse_memory_config(json{{"buffers", {{"standard_capacity", 0}}}},
                                 {}, "memory");
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().subject, "memory.buffers.standard_capacity");
  auto unknown = parse_memory_config(json{{"x", 1}}, {}, "memory");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().subject, "memory.x");
  auto not_object = parse_memory_config(json(3), {}, "memory");
  ASSERT_FALSE(not_object);
  EXPECT_EQ(not_object.error().subject, "memory");
}

TEST(ConfigReader, ReadsTypedFieldsAndLeavesAbsentOnesAlone) {
  auto j = json{
    {"n", 5}, {"b", true}, {"s", "text"}, {"d", 0.25}, {"sub", {{"k", 1}}}};
  config_reader r{j, "sec"};
  uint64_t n = 0;
  uint32_t absent = 9;
  bool b = false;
  std::string s;
  double d = 0;
  r.read("n", n)
    .read("absent", absent)
    .read("b", b)
    .read("s", s)
    .read("d", d, 0.0, 1.0);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(n, 5u);
  EXPECT_EQ(absent, 9u);
  EXPECT_TRUE(b);
  EXPECT_EQ(s, "text");
  EXPECT_EQ(d, 0.25);
  EXPECT_EQ(r.object("sub")["k"], 1);
  EXPECT_TRUE(r.object("nothing").is_object());
  EXPECT_TRUE(r.object("nothing").empty());
  r.only({"n", "b", "s", "d", "sub"});
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.path("x"), "sec.x");
  EXPECT_EQ(r.path(nullptr), "sec");
}

TEST(ConfigReader, FirstErrorWinsAndValuesStayUntouched) {
  auto j = json{{"d", 2.0}, {"s", 3}, {"n", 300}};
  config_reader r{j, ""};
  double d = 0.5;
  std::string s = "keep";
  uint32_t n = 7;
  r.read("d", d, 0.0, 1.0).read("s", s).read("n", n, 0, 255);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error().subject, "d");
  EXPECT_EQ(r.error().code, errc::invalid_config);
  EXPECT_EQ(d, 0.5);
  EXPECT_EQ(s, "keep");
  EXPECT_EQ(n, 7u);
  r.fail("other", "later");
  EXPECT_EQ(r.error().subject, "d");
  EXPECT_EQ(r.path(nullptr), "(root)");
}

TEST(ConfigReader, RejectsNonNumbersForDoubles) {
  auto j = json{{"d", "0.5"}, {"nan", nullptr}};
  config_reader r{j, "p"};
  double d = 0;
  r.read("d", d, 0, 1);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error().subject, "p.d");
}

TEST(ConfigReader, OnlyRejectsUnknownFields) {
  auto j = json{{"known", 1}, {"typo", 2}};
  config_reader r{j, "sec"};
  r.only({"known"});
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error().subject, "sec.typo");
  EXPECT_STREQ(r.error().what, "unknown field");
}
