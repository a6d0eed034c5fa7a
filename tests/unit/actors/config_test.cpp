// parse_runtime_config and read_config_file (actors/config.hpp): defaults,
// every field, and errors that name the field.

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include <caf/actor_system_config.hpp>

#include <mayfly/actors/config.hpp>
#include <mayfly/actors/runtime.hpp>
#include "tests/support/small_runtime.hpp"

namespace {

using mayfly::overload_policy;
using mayfly::parse_runtime_config;
using nlohmann::json;

std::string error_of(const json& doc) {
  auto cfg = parse_runtime_config(doc);
  EXPECT_FALSE(cfg) << doc.dump();
  return cfg ? std::string{} : cfg.error().message();
}

TEST(RuntimeConfig, EmptyDocumentKeepsTheDefaults) {
  auto cfg = parse_runtime_config(json::object());
  ASSERT_TRUE(cfg) << cfg.error().message();
  mayfly::runtime_config defaults;
  EXPECT_EQ(cfg->workers, defaults.workers);
  EXPECT_EQ(cfg->max_throughput, defaults.max_throughput);
  EXPECT_EQ(cfg->max_in_flight, defaults.max_in_flight);
  EXPECT_EQ(cfg->overload, overload_policy::pause);
  EXPECT_EQ(cfg->shutdown_deadline_ms, defaults.shutdown_deadline_ms);
  EXPECT_EQ(cfg->idle, mayfly::worker_idle::poll);
  EXPECT_EQ(cfg->memory.buffers.standard_capacity,
            defaults.memory.buffers.standard_capacity);
}

TEST(RuntimeConfig, ReadsEveryField) {
  auto cfg = parse_runtime_config(json::parse(R"({
    "runtime": { "workers": 3, "max_throughput": 16, "max_in_flight": 100,
                 "overload": "drop", "shutdown_deadline_ms": 250,
                 "worker_idle": "block" },
    "memory": { "buffers": { "standard_capacity": 64, "jumbo_capacity": 2 },
                "arenas": { "capacity": 32 } },
    "net": { "batch": 8 },
    "stats": { "address": "127.0.0.1:9100" }
  })"));
  ASSERT_TRUE(cfg) << cfg.error().message();
  EXPECT_EQ(cfg->workers, 3u);
  EXPECT_EQ(cfg->max_throughput, 16u);
  EXPECT_EQ(cfg->max_in_flight, 100u);
  EXPECT_EQ(cfg->overload, overload_policy::drop);
  EXPECT_EQ(cfg->shutdown_deadline_ms, 250u);
  EXPECT_EQ(cfg->idle, mayfly::worker_idle::block);
  EXPECT_EQ(cfg->memory.buffers.standard_capacity, 64u);
  EXPECT_EQ(cfg->memory.buffers.jumbo_capacity, 2u);
  EXPECT_EQ(cfg->memory.arenas.capacity, 32u);
}

TEST(RuntimeConfig, ErrorsNameTheField) {
  EXPECT_EQ(error_of({{"runtime", {{"max_in_flight", 0}}}}),
            "runtime.max_in_flight: value out of range");
  EXPECT_EQ(error_of({{"runtime", {{"workers", 5000}}}}),
            "runtime.workers: value out of range");
  EXPECT_EQ(error_of({{"runtime", {{"overload", "shed"}}}}),
            "runtime.overload: expected \"pause\" or \"drop\"");
  EXPECT_EQ(error_of({{"runtime", {{"worker_idle", "spin"}}}}),
            "runtime.worker_idle: expected \"poll\" or \"block\"");
  EXPECT_NE(error_of({{"runtime", {{"workers", "two"}}}}).find("runtime.workers"),
            std::string::npos);
  EXPECT_EQ(error_of({{"runtime", {{"wrokers", 2}}}}),
            "runtime.wrokers: unknown field");
  EXPECT_EQ(error_of({{"bogus", json::object()}}), "bogus: unknown field");
  EXPECT_NE(error_of({{"runtime", 3}}).find("runtime"), std::string::npos);
  EXPECT_NE(error_of({{"memory", {{"buffers", {{"standard_capacity", 0}}}}}})
              .find("memory.buffers.standard_capacity"),
            std::string::npos);
}

// A setting that once existed and did nothing is refused, not ignored.
TEST(RuntimeConfig, RemovedDetachBelowBytesIsAnUnknownField) {
  EXPECT_EQ(error_of({{"runtime", {{"detach_below_bytes", 256}}}}),
            "runtime.detach_below_bytes: unknown field");
}

TEST(RuntimeConfig, ReadsFilesWithCommentsAndReportsBadOnes) {
  auto path = std::string{::testing::TempDir()} + "mayfly_config_test.json";
  {
    std::ofstream out{path};
    out << "// comment\n{ \"runtime\": { \"workers\": 2 } /* more */ }\n";
  }
  auto doc = mayfly::read_config_file(path);
  ASSERT_TRUE(doc) << doc.error().message();
  auto cfg = parse_runtime_config(*doc);
  ASSERT_TRUE(cfg);
  EXPECT_EQ(cfg->workers, 2u);
  {
    std::ofstream out{path};
    out << "{ \"runtime\": ";
  }
  auto bad = mayfly::read_config_file(path);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(), path + ": configuration file is not valid JSON");
  std::remove(path.c_str());
  auto missing = mayfly::read_config_file(path);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message(),
            path + ": cannot open configuration file: No such file or directory");
}

// Issue 18 item 5: `--config /tmp` and `--config /proc/self/mem` aborted
// with std::__ios_failure (rc 134): the ifstream threw inside the parser.
TEST(RuntimeConfig, UnreadableConfigFilesAreErrorsNotAborts) {
  auto dir = mayfly::read_config_file("/tmp");
  ASSERT_FALSE(dir);
  EXPECT_EQ(dir.error().message(),
            "/tmp: cannot read configuration file: Is a directory");
  auto mem = mayfly::read_config_file("/proc/self/mem");
  ASSERT_FALSE(mem);
  EXPECT_EQ(mem.error().message(),
            "/proc/self/mem: cannot read configuration file: Input/output "
            "error");
  auto dev = mayfly::read_config_file("/dev/zero");
  ASSERT_FALSE(dev);
  EXPECT_EQ(dev.error().message(),
            "/dev/zero: configuration file is not a regular file");
}

// Issue 18 item 5: a key given twice was accepted silently (the last won).
TEST(RuntimeConfig, DuplicateKeysInAConfigFileAreErrors) {
  auto path = std::string{::testing::TempDir()} + "mayfly_config_dup.json";
  auto read = [&](const char* text) {
    {
      std::ofstream out{path};
      out << text;
    }
    auto doc = mayfly::read_config_file(path);
    std::remove(path.c_str());
    return doc ? std::string{"ok"} : doc.error().message();
  };
  EXPECT_EQ(read(R"({ "runtime": { "workers": 2, "workers": 3 } })"),
            path + ": runtime.workers: key given twice in the configuration "
                   "file");
  EXPECT_EQ(read(R"({ "net": {}, "net": {} })"),
            path + ": net: key given twice in the configuration file");
  // The same key in different objects is fine, and so are arrays.
  EXPECT_EQ(read(R"({ "a": { "x": 1 }, "b": { "x": [ { "y": 1 }, { "y": 2 } ] } })"),
            "ok");
}

// worker_idle reaches CAF: "block" skips the napping phase of CAF's
// work-stealing workers, "poll" leaves CAF's default (500 naps).
TEST(RuntimeConfig, WorkerIdleConfiguresCafsWorkers) {
  for (auto idle : {mayfly::worker_idle::block, mayfly::worker_idle::poll}) {
    auto cfg = mayfly::test::small_runtime_config();
    cfg.idle = idle;
    auto rt = mayfly::runtime::make(cfg);
    ASSERT_TRUE(rt) << rt.error().message();
    auto naps = caf::get_or((*rt)->system().config(),
                            "work-stealing.moderate-poll-attempts",
                            size_t{12345});
    if (idle == mayfly::worker_idle::block)
      EXPECT_EQ(naps, 0u);
    else
      EXPECT_EQ(naps, 12345u); // not set: CAF's own default applies
    EXPECT_EQ((*rt)->collect_stats()["runtime"]["worker_idle"],
              mayfly::to_string(idle));
  }
}

} // namespace
