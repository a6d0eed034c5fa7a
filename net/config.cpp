#include <mayfly/net/config.hpp>

namespace mayfly {

result<config> parse_config(const nlohmann::json& doc, config cfg) {
  // parse_runtime_config checks the top level (known sections only).
  auto rt = parse_runtime_config(doc, cfg.runtime);
  if (!rt)
    return rt.error();
  cfg.runtime = *rt;
  auto net = parse_endpoint_config(doc, cfg.net);
  if (!net)
    return net.error();
  cfg.net = *net;
  auto stats = parse_stats_config(doc, cfg.stats);
  if (!stats)
    return stats.error();
  cfg.stats = *stats;
  if (doc.contains("net") && doc["net"].contains("source_limit")) {
    auto limit = parse_source_limit_config(doc);
    if (!limit)
      return limit.error();
    cfg.source_limit = *limit;
  }
  return cfg;
}

result<config> load_config(const std::string& path, config defaults) {
  auto doc = read_config_file(path);
  if (!doc)
    return doc.error();
  auto cfg = parse_config(*doc, std::move(defaults));
  if (!cfg) {
    auto err = cfg.error();
    err.subject = path + ": " + err.subject;
    return err;
  }
  return cfg;
}

} // namespace mayfly
