#include <mayfly/actors/config.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace mayfly {

const char* to_string(overload_policy x) noexcept {
  return x == overload_policy::pause ? "pause" : "drop";
}

const char* to_string(handler_start s) noexcept {
  return s == handler_start::workers ? "workers" : "io_thread";
}

const char* to_string(worker_idle x) noexcept {
  return x == worker_idle::poll ? "poll" : "block";
}

std::optional<error_info> check_detach_config(const detach_config& cfg) {
  if (cfg.max_slice_bytes < cfg.min_binary_bytes)
    return std::nullopt;
  return error_info{errc::invalid_config,
                    "must be below runtime.detach.min_binary_bytes", 0,
                    "runtime.detach.max_slice_bytes"};
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
           "shutdown_deadline_ms", "worker_idle", "stall_threshold_ms",
           "latency_histograms", "detach", "top_holders"})
    .read("workers", cfg.workers, 0, 1024)
    .read("max_throughput", cfg.max_throughput, 1)
    .read("max_in_flight", cfg.max_in_flight, 1, 1u << 24)
    .choose("overload", cfg.overload,
            {{"pause", overload_policy::pause}, {"drop", overload_policy::drop}},
            "expected \"pause\" or \"drop\"")
    .read("shutdown_deadline_ms", cfg.shutdown_deadline_ms, 0, 3600000)
    .read("stall_threshold_ms", cfg.stall_threshold_ms, 0, 3600000)
    .read("latency_histograms", cfg.latency_histograms)
    .choose("worker_idle", cfg.idle,
            {{"poll", worker_idle::poll}, {"block", worker_idle::block}},
            "expected \"poll\" or \"block\"")
    .read("top_holders", cfg.top_holders, 1, 1000);
  const auto& detach_json = rt.object("detach");
  if (!rt.ok())
    return rt.error();
  config_reader detach{detach_json, "runtime.detach"};
  detach.only({"enabled", "max_slice_bytes", "min_binary_bytes"})
    .read("enabled", cfg.detach.enabled)
    .read("max_slice_bytes", cfg.detach.max_slice_bytes, 0, 1u << 20)
    .read("min_binary_bytes", cfg.detach.min_binary_bytes, 1);
  if (!detach.ok())
    return detach.error();
  if (auto err = check_detach_config(cfg.detach))
    return *err;
  auto mem = parse_memory_config(mem_json, cfg.memory, "memory");
  if (!mem)
    return mem.error();
  cfg.memory = *mem;
  return cfg;
}

namespace {

// The largest configuration file read (a guard against `--config
// /dev/zero`-like mistakes; real ones are a few KiB).
constexpr size_t max_config_bytes = 16u << 20;

// The whole of a regular file, or why not. Plain POSIX reads: an
// std::ifstream throws from inside the JSON parser on a read error (a
// directory, /proc/self/mem), which would abort the program.
result<std::string> read_whole_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return error_info{errc::invalid_config, "cannot open configuration file",
                      errno, path};
  struct closer {
    int fd;
    ~closer() {
      ::close(fd);
    }
  } guard{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    return error_info{errc::invalid_config, "cannot read configuration file",
                      errno, path};
  if (S_ISDIR(st.st_mode))
    return error_info{errc::invalid_config, "cannot read configuration file",
                      EISDIR, path};
  if (!S_ISREG(st.st_mode))
    return error_info{errc::invalid_config,
                      "configuration file is not a regular file", 0, path};
  std::string text;
  char buf[16384];
  for (;;) {
    auto n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return error_info{errc::invalid_config,
                        "cannot read configuration file", errno, path};
    if (n == 0)
      return text;
    if (text.size() + static_cast<size_t>(n) > max_config_bytes)
      return error_info{errc::invalid_config,
                        "configuration file larger than 16 MiB", 0, path};
    text.append(buf, static_cast<size_t>(n));
  }
}

// Notes the first key that appears twice in one JSON object, with its path
// ("runtime.workers"), while nlohmann::json parses: by default the last one
// would silently win.
struct duplicate_finder {
  struct frame {
    bool object;
    std::set<std::string> keys;
    std::string key; // the key of the value being parsed
  };
  std::vector<frame> frames;
  std::string duplicate; // path of the first duplicate key; empty: none

  bool operator()(int, nlohmann::json::parse_event_t event,
                  nlohmann::json& parsed) {
    using ev = nlohmann::json::parse_event_t;
    switch (event) {
      case ev::object_start:
        frames.push_back({true, {}, {}});
        break;
      case ev::array_start:
        frames.push_back({false, {}, {}});
        break;
      case ev::object_end:
      case ev::array_end:
        if (!frames.empty())
          frames.pop_back();
        break;
      case ev::key:
        if (!frames.empty() && parsed.is_string()) {
          auto& top = frames.back();
          top.key = parsed.get<std::string>();
          if (!top.keys.insert(top.key).second && duplicate.empty())
            duplicate = path();
        }
        break;
      case ev::value:
        break;
    }
    return true;
  }

  std::string path() const {
    std::string out;
    for (auto& f : frames) {
      if (!f.object)
        break; // inside an array: the array's key names it well enough
      out += out.empty() ? f.key : "." + f.key;
    }
    return out;
  }
};

} // namespace

result<nlohmann::json> read_config_file(const std::string& path) {
  auto text = read_whole_file(path);
  if (!text)
    return text.error();
  duplicate_finder finder;
  auto doc = nlohmann::json::parse(
    *text,
    [&finder](int depth, nlohmann::json::parse_event_t event,
              nlohmann::json& parsed) {
      return finder(depth, event, parsed);
    },
    false, true);
  if (doc.is_discarded()) {
    error_info err{errc::invalid_config,
                   "configuration file is not valid JSON", 0, path};
    return err;
  }
  if (!finder.duplicate.empty()) {
    error_info err{errc::invalid_config,
                   "key given twice in the configuration file", 0,
                   path + ": " + finder.duplicate};
    return err;
  }
  return doc;
}

} // namespace mayfly
