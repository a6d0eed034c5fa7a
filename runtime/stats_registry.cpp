#include <mayfly/runtime/stats_registry.hpp>

#include <algorithm>

namespace mayfly {

stats_registry::registration::registration(registration&& other) noexcept
  : reg_(std::exchange(other.reg_, nullptr)), id_(other.id_) {
}

stats_registry::registration&
stats_registry::registration::operator=(registration&& other) noexcept {
  if (this != &other) {
    reset();
    reg_ = std::exchange(other.reg_, nullptr);
    id_ = other.id_;
  }
  return *this;
}

stats_registry::registration::~registration() {
  reset();
}

void stats_registry::registration::reset() noexcept {
  if (reg_ != nullptr)
    std::exchange(reg_, nullptr)->remove(id_);
}

stats_registry::registration
stats_registry::add(std::string path, source fn,
                    std::vector<metric_section> described) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto id = next_id_++;
  entries_.push_back(
    entry{id, std::move(path), std::move(fn), std::move(described)});
  return registration{this, id};
}

void stats_registry::remove(uint64_t id) noexcept {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = std::find_if(entries_.begin(), entries_.end(),
                        [id](const entry& e) { return e.id == id; });
  if (i != entries_.end())
    entries_.erase(i);
}

nlohmann::json stats_registry::collect() const {
  nlohmann::json doc = {{"schema", kSchema}};
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto& e : entries_) {
    nlohmann::json::json_pointer ptr{e.path};
    auto value = e.fn();
    auto& slot = doc[ptr];
    if (slot.is_object() && value.is_object())
      slot.update(value);
    else
      slot = std::move(value);
  }
  return doc;
}

namespace {

constexpr metric_info kSchemaMetrics[] = {
  {"schema", metric_kind::config, "",
   "version of the document layout, bumped on any incompatible change"},
};

} // namespace

const metric_section stats_registry::schema_metrics{"schema", "",
                                                    kSchemaMetrics};

std::vector<metric_section> stats_registry::descriptions() const {
  std::vector<metric_section> out{schema_metrics};
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto& e : entries_)
    for (auto& d : e.described) {
      bool seen = std::any_of(out.begin(), out.end(), [&](auto& o) {
        return o.path == d.path && o.metrics.data() == d.metrics.data()
               && o.metrics.size() == d.metrics.size();
      });
      if (!seen)
        out.push_back(d);
    }
  return out;
}

} // namespace mayfly
