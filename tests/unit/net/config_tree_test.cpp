// `mayfly::config`: one value for the whole configuration document, its
// members mirroring the sections; one parse function with errors that name
// the field by its path; no test-only switch in it.

#include <mayfly/net/config.hpp>

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace {

using namespace mayfly;

TEST(ConfigTree, EverySectionLandsInItsMember) {
  auto doc = nlohmann::json::parse(R"({
    "runtime": { "workers": 3, "overload": "drop" },
    "memory": { "buffers": { "standard_capacity": 77 },
                "arenas": { "capacity": 9 } },
    "net": { "batch": 8, "handler_start": "workers" },
    "stats": { "address": "127.0.0.1:9100", "threads": 2 },
    "service": { "anything": true }
  })");
  auto cfg = parse_config(doc);
  ASSERT_TRUE(cfg) << cfg.error().message();
  EXPECT_EQ(cfg->runtime.workers, 3u);
  EXPECT_EQ(cfg->runtime.overload, overload_policy::drop);
  EXPECT_EQ(cfg->runtime.memory.buffers.standard_capacity, 77u);
  EXPECT_EQ(cfg->runtime.memory.arenas.capacity, 9u);
  EXPECT_EQ(cfg->net.batch, 8u);
  EXPECT_EQ(cfg->net.handler_start, handler_start::workers);
  ASSERT_TRUE(cfg->stats.address);
  EXPECT_EQ(cfg->stats.address->port(), 9100);
  EXPECT_EQ(cfg->stats.limits.threads, 2u);
}

TEST(ConfigTree, AbsentFieldsKeepTheGivenDefaults) {
  config defaults;
  defaults.net.batch = 5;
  defaults.runtime.max_in_flight = 12;
  auto cfg = parse_config(nlohmann::json::object(), defaults);
  ASSERT_TRUE(cfg);
  EXPECT_EQ(cfg->net.batch, 5u);
  EXPECT_EQ(cfg->runtime.max_in_flight, 12u);
  EXPECT_FALSE(cfg->stats.address);
}

TEST(ConfigTree, ErrorsNameTheFieldByItsPath) {
  auto subject = [](const char* text) {
    auto cfg = parse_config(nlohmann::json::parse(text));
    EXPECT_FALSE(cfg) << text;
    return cfg ? std::string{} : cfg.error().subject;
  };
  EXPECT_EQ(subject(R"({"runtime": {"workers": 5000}})"), "runtime.workers");
  EXPECT_EQ(subject(R"({"memory": {"arenas": {"capacity": "x"}}})"),
            "memory.arenas.capacity");
  EXPECT_EQ(subject(R"({"net": {"batch": 0}})"), "net.batch");
  EXPECT_EQ(subject(R"({"stats": {"threads": 0}})"), "stats.threads");
  EXPECT_EQ(subject(R"({"runtime": {"testing_scheduler": true}})"),
            "runtime.testing_scheduler"); // not a production field
  EXPECT_EQ(subject(R"({"endpoint": {}})"), "endpoint"); // unknown section
}

TEST(ConfigTree, LoadConfigNamesTheFileAndTheField) {
  auto path = ::testing::TempDir() + "mayfly_config_tree_test.json";
  {
    std::ofstream out{path};
    out << R"({"net": {"reply_queue": 1}})";
  }
  auto cfg = load_config(path);
  std::remove(path.c_str());
  ASSERT_FALSE(cfg);
  EXPECT_EQ(cfg.error().subject, path + ": net.reply_queue");
  auto missing = load_config(path);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().subject, path);
}

} // namespace
