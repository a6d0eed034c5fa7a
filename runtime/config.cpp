#include <mayfly/runtime/config.hpp>

#include <algorithm>

namespace mayfly {

namespace {

const nlohmann::json& empty_object() {
  static const nlohmann::json obj = nlohmann::json::object();
  return obj;
}

} // namespace

config_reader::config_reader(const nlohmann::json& obj, std::string prefix)
  : obj_(&obj), prefix_(std::move(prefix)) {
  if (!obj.is_object()) {
    obj_ = &empty_object();
    fail(nullptr, "expected a JSON object");
  }
}

std::string config_reader::path(const char* field) const {
  if (field == nullptr)
    return prefix_.empty() ? std::string{"(root)"} : prefix_;
  return prefix_.empty() ? std::string{field} : prefix_ + "." + field;
}

void config_reader::fail(const char* field, const char* what) {
  if (failed_)
    return;
  failed_ = true;
  error_.what = what;
  error_.subject = path(field);
}

config_reader& config_reader::read(const char* field, uint64_t& out,
                                   uint64_t min, uint64_t max) {
  auto i = obj_->find(field);
  if (i == obj_->end())
    return *this;
  if (!i->is_number_unsigned() && !(i->is_number_integer() && *i >= 0)) {
    fail(field, "expected a non-negative integer");
    return *this;
  }
  auto value = i->get<uint64_t>();
  if (value < min || value > max) {
    fail(field, "value out of range");
    return *this;
  }
  out = value;
  return *this;
}

config_reader& config_reader::read(const char* field, uint32_t& out,
                                   uint32_t min, uint32_t max) {
  uint64_t value = out;
  read(field, value, min, max);
  out = static_cast<uint32_t>(value);
  return *this;
}

config_reader& config_reader::read(const char* field, bool& out) {
  auto i = obj_->find(field);
  if (i == obj_->end())
    return *this;
  if (!i->is_boolean())
    fail(field, "expected true or false");
  else
    out = i->get<bool>();
  return *this;
}

config_reader& config_reader::read(const char* field, std::string& out) {
  auto i = obj_->find(field);
  if (i == obj_->end())
    return *this;
  if (!i->is_string())
    fail(field, "expected a string");
  else
    out = i->get<std::string>();
  return *this;
}

config_reader& config_reader::read(const char* field, double& out, double min,
                                   double max) {
  auto i = obj_->find(field);
  if (i == obj_->end())
    return *this;
  if (!i->is_number()) {
    fail(field, "expected a number");
    return *this;
  }
  auto value = i->get<double>();
  if (!(value >= min && value <= max))
    fail(field, "value out of range");
  else
    out = value;
  return *this;
}

const nlohmann::json& config_reader::object(const char* field) {
  auto i = obj_->find(field);
  if (i == obj_->end())
    return empty_object();
  if (!i->is_object()) {
    fail(field, "expected a JSON object");
    return empty_object();
  }
  return *i;
}

config_reader& config_reader::only(std::initializer_list<const char*> known) {
  for (auto& item : obj_->items()) {
    // (A named reference, not a structured binding: clang 14 cannot capture
    // those in a lambda.)
    const std::string& key = item.key();
    auto hit = std::any_of(known.begin(), known.end(),
                           [&](const char* k) { return key == k; });
    if (!hit) {
      if (!failed_) {
        failed_ = true;
        error_.what = "unknown field";
        error_.subject = prefix_.empty() ? key : prefix_ + "." + key;
      }
      break;
    }
  }
  return *this;
}

result<memory_config> parse_memory_config(const nlohmann::json& j,
                                          memory_config cfg,
                                          std::string prefix) {
  config_reader top{j, prefix};
  top.only({"buffers", "arenas"});
  const auto& buffers_json = top.object("buffers");
  const auto& arenas_json = top.object("arenas");
  if (!top.ok())
    return top.error();
  auto& b = cfg.buffers;
  config_reader buffers{buffers_json, top.path("buffers")};
  buffers
    .only({"standard_slot_size", "standard_capacity", "jumbo_slot_size",
           "jumbo_capacity", "huge_pages", "prefault"})
    .read("standard_slot_size", b.standard_slot_size, 64, UINT32_MAX)
    .read("standard_capacity", b.standard_capacity, 1, UINT32_MAX - 1)
    .read("jumbo_slot_size", b.jumbo_slot_size, 0, UINT32_MAX)
    .read("jumbo_capacity", b.jumbo_capacity, 0, UINT32_MAX - 1)
    .read("huge_pages", b.huge_pages)
    .read("prefault", b.prefault);
  if (buffers.ok() && b.jumbo_slot_size != 0 && b.jumbo_capacity != 0
      && b.jumbo_slot_size <= b.standard_slot_size)
    buffers.fail("jumbo_slot_size", "must exceed standard_slot_size");
  if (!buffers.ok())
    return buffers.error();
  auto& a = cfg.arenas;
  config_reader arenas{arenas_json, top.path("arenas")};
  arenas.only({"block_size", "capacity", "max_arena_bytes"})
    .read("block_size", a.block_size, 128, UINT32_MAX)
    .read("capacity", a.capacity, 1, UINT32_MAX - 1)
    .read("max_arena_bytes", a.max_arena_bytes, 128);
  if (arenas.ok() && a.max_arena_bytes + 64 < a.block_size)
    arenas.fail("max_arena_bytes", "must be at least one block's payload");
  if (!arenas.ok())
    return arenas.error();
  a.huge_pages = b.huge_pages;
  a.prefault = b.prefault;
  return cfg;
}

} // namespace mayfly
