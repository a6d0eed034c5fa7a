#include <mayfly/actors/config.hpp>

#include <fstream>
#include <thread>

namespace mayfly {

const char* to_string(overload_policy x) noexcept {
  return x == overload_policy::pause ? "pause" : "drop";
}

const char* to_string(worker_idle x) noexcept {
  return x == worker_idle::poll ? "poll" : "block";
}

result<runtime_config> parse_runtime_config(const nlohmann::json& doc,
                                            runtime_config cfg) {
  config_reader top{doc, ""};
  // "service": the service's own settings, read by the service.
  top.only({"runtime", "memory", "net", "stats", "service"});
  const auto& rt_json = top.object("runtime");
  const auto& mem_json = top.object("memory");
  if (!top.ok())
    return top.error();
  config_reader rt{rt_json, "runtime"};
  rt.only({"workers", "max_throughput", "max_in_flight", "overload",
           "shutdown_deadline_ms", "worker_idle"})
    .read("workers", cfg.workers, 0, 1024)
    .read("max_throughput", cfg.max_throughput, 1)
    .read("max_in_flight", cfg.max_in_flight, 1, 1u << 24)
    .choose("overload", cfg.overload,
            {{"pause", overload_policy::pause}, {"drop", overload_policy::drop}},
            "expected \"pause\" or \"drop\"")
    .read("shutdown_deadline_ms", cfg.shutdown_deadline_ms, 0, 3600000)
    .choose("worker_idle", cfg.idle,
            {{"poll", worker_idle::poll}, {"block", worker_idle::block}},
            "expected \"poll\" or \"block\"");
  if (!rt.ok())
    return rt.error();
  auto mem = parse_memory_config(mem_json, cfg.memory, "memory");
  if (!mem)
    return mem.error();
  cfg.memory = *mem;
  return cfg;
}

result<nlohmann::json> read_config_file(const std::string& path) {
  std::ifstream in{path};
  if (!in) {
    error_info err{errc::invalid_config, "cannot open configuration file",
                   errno, path};
    return err;
  }
  auto doc = nlohmann::json::parse(in, nullptr, false, true);
  if (doc.is_discarded()) {
    error_info err{errc::invalid_config,
                   "configuration file is not valid JSON", 0, path};
    return err;
  }
  return doc;
}

} // namespace mayfly
