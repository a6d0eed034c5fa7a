#include <mayfly/actors/messages.hpp>

#include <atomic>
#include <string>
#include <string_view>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/execution_unit.hpp>
#include <caf/runtime_settings_map.hpp>

#include <mayfly/actors/errors.hpp>
#include <mayfly/actors/fanout.hpp>
#include <mayfly/actors/handler.hpp>
#include <mayfly/runtime/buffer_pool.hpp>

namespace mayfly {

batcher::batcher(handler_context& ctx,
                 const std::vector<caf::actor>& destinations)
  : batcher(ctx.arena(), destinations) {
  policy_ = &detail::detach_policy_of(ctx.runtime());
}

namespace {

// The runtime settings key under which a runtime registers its pools.
constexpr caf::atom_value kPoolsKey = caf::atom("mayfly");

// X(name, kind, unit, help): the remote counters, declared once. A name is
// its group and its key joined by the first '_' (`sent_slices` is
// `sent.slices` in docs/stats.md, {"sent": {"slices": n}} in JSON). The
// enum, the JSON of `remote_message_stats()` and the descriptions
// (`remote_metrics`) are derived from it.
#define MAYFLY_REMOTE_COUNTERS(X)                                              \
  X(sent_slices, counter, "", "slices serialized for another node (a batch "   \
    "counts once per item)")                                                   \
  X(sent_batches, counter, "", "keyed batches serialized for another node")    \
  X(sent_bytes, counter, "bytes", "key bytes serialized for another node")     \
  X(received_slices, counter, "", "slices deserialized into fresh binaries "   \
    "of this runtime's pools")                                                 \
  X(received_batches, counter, "", "keyed batches deserialized")               \
  X(received_bytes, counter, "bytes", "key bytes deserialized")                \
  X(rejected_malformed, counter, "", "input from another node that violated "  \
    "the wire format (truncated, item count over capacity, key lengths that "  \
    "do not add up); that message was dropped")                                \
  X(rejected_too_large, counter, "", "a slice over 65,535 bytes, refused "     \
    "before allocating")                                                       \
  X(rejected_pool_exhausted, counter, "", "no pool slot to receive into")      \
  X(rejected_no_runtime, counter, "", "arrived at an actor system without a "  \
    "mayfly runtime")

// Remote traffic is rare next to the datagram path and already costs a
// serialization: plain relaxed atomics, no sharding.
enum counter : size_t {
#define MAYFLY_X(name, kind, unit, help) name,
  MAYFLY_REMOTE_COUNTERS(MAYFLY_X)
#undef MAYFLY_X
  num_counters,
};

constexpr std::string_view kCounterNames[] = {
#define MAYFLY_X(name, kind, unit, help) #name,
  MAYFLY_REMOTE_COUNTERS(MAYFLY_X)
#undef MAYFLY_X
};

std::atomic<int64_t> counters[num_counters];

void count(counter c, int64_t n = 1) noexcept {
  counters[c].fetch_add(n, std::memory_order_relaxed);
}

int64_t read(counter c) noexcept {
  return counters[c].load(std::memory_order_relaxed);
}

// Every rejection of input from another node goes through here: counted,
// then reported to CAF (which drops that one message).
caf::error reject(errc code, std::string what) {
  switch (code) {
    case errc::too_large:
      count(rejected_too_large);
      break;
    case errc::pool_exhausted:
    case errc::out_of_memory:
      count(rejected_pool_exhausted);
      break;
    case errc::not_running:
      count(rejected_no_runtime);
      break;
    default:
      count(rejected_malformed);
  }
  return caf::make_error(code, std::move(what));
}

// Wraps an error of the deserializer itself (truncated input).
caf::error reject_truncated(const char* type, const caf::error&) {
  return reject(errc::malformed,
                std::string{type} + ": truncated or unreadable input");
}

buffer_pools* pools_of(caf::deserializer& source) {
  auto* ctx = source.context();
  if (ctx == nullptr) // (a deserializer made without an actor system)
    return nullptr;
  auto value = ctx->system().runtime_settings().get(kPoolsKey);
  auto* ptr = caf::get_if<caf::runtime_settings_map::generic_pointer>(&value);
  return ptr != nullptr ? static_cast<buffer_pools*>(*ptr) : nullptr;
}

// A fresh binary of `n` bytes from the receiving runtime's pools, filled
// from `source`.
caf::error read_binary(caf::deserializer& source, size_t n, const char* type,
                       slice& out) {
  out.reset();
  if (n == 0)
    return caf::none;
  auto* pools = pools_of(source);
  if (pools == nullptr)
    return reject(errc::not_running,
                  std::string{type}
                    + ": this actor system has no mayfly runtime (no pools "
                      "to receive into)");
  auto buf = pools->acquire(n);
  if (!buf)
    return reject(buf.error().code,
                  std::string{type} + ": " + buf.error().message());
  if (auto err = source.apply_raw(n, buf->data()))
    return reject_truncated(type, err);
  out = std::move(*buf).freeze(n);
  return caf::none;
}

caf::error write_bytes(caf::serializer& sink, const slice& x) {
  if (x.empty())
    return caf::none;
  return sink.apply_raw(x.size(), const_cast<std::byte*>(x.data()));
}

} // namespace

void add_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<slice>("mayfly.slice");
  cfg.add_message_type<slice_batch>("mayfly.slice_batch");
  cfg.add_message_type<key_batch>("mayfly.key_batch");
}

nlohmann::json remote_message_stats() {
  auto out = nlohmann::json::object();
  for (size_t i = 0; i < num_counters; ++i) {
    auto name = kCounterNames[i];
    auto cut = name.find('_');
    out[std::string{name.substr(0, cut)}][std::string{name.substr(cut + 1)}]
      = read(static_cast<counter>(i));
  }
  return out;
}

namespace detail {

bool attach_pools(caf::actor_system& system, buffer_pools* pools) {
  auto& settings = system.runtime_settings();
  auto value = settings.get(kPoolsKey);
  auto* ptr = caf::get_if<caf::runtime_settings_map::generic_pointer>(&value);
  if (ptr != nullptr && *ptr != nullptr)
    return *ptr == pools;
  settings.set(kPoolsKey, static_cast<void*>(pools));
  return true;
}

void detach_pools(caf::actor_system& system, buffer_pools* pools) {
  auto& settings = system.runtime_settings();
  auto value = settings.get(kPoolsKey);
  auto* ptr = caf::get_if<caf::runtime_settings_map::generic_pointer>(&value);
  if (ptr != nullptr && *ptr == pools)
    settings.erase(kPoolsKey);
}

// -- slice: a length, then the bytes ----------------------------------------------

caf::error save_remote(caf::serializer& sink, const slice& x) {
  if (x.size() > kMaxRemoteSliceBytes)
    return caf::make_error(errc::too_large,
                           "mayfly.slice of " + std::to_string(x.size())
                             + " bytes (limit "
                             + std::to_string(kMaxRemoteSliceBytes) + ")");
  size_t n = x.size();
  if (auto err = sink.begin_sequence(n))
    return err;
  if (auto err = write_bytes(sink, x))
    return err;
  if (auto err = sink.end_sequence())
    return err;
  count(sent_slices);
  count(sent_bytes, static_cast<int64_t>(n));
  return caf::none;
}

caf::error load_remote(caf::deserializer& source, slice& x) {
  x.reset();
  size_t n = 0;
  if (auto err = source.begin_sequence(n))
    return reject_truncated("mayfly.slice", err);
  if (n > kMaxRemoteSliceBytes)
    return reject(errc::too_large,
                  "mayfly.slice: " + std::to_string(n) + " bytes (limit "
                    + std::to_string(kMaxRemoteSliceBytes) + ")");
  if (auto err = read_binary(source, n, "mayfly.slice", x))
    return err;
  if (auto err = source.end_sequence()) {
    x.reset();
    return reject_truncated("mayfly.slice", err);
  }
  count(received_slices);
  count(received_bytes, static_cast<int64_t>(n));
  return caf::none;
}

// -- slice_batch: count, all key bytes, then (key length, value) per item ---------

caf::error save_remote(caf::serializer& sink, const slice_batch& x) {
  MAYFLY_ASSERT(x.size <= slice_batch::kCapacity);
  size_t total = 0;
  for (auto& item : x.view()) {
    if (item.key.size() > kMaxRemoteSliceBytes)
      return caf::make_error(errc::too_large,
                             "mayfly.slice_batch: a key of "
                               + std::to_string(item.key.size()) + " bytes");
    total += item.key.size();
  }
  uint32_t n = x.size;
  if (auto err = sink(n))
    return err;
  if (auto err = sink.begin_sequence(total))
    return err;
  for (auto& item : x.view())
    if (auto err = write_bytes(sink, item.key))
      return err;
  if (auto err = sink.end_sequence())
    return err;
  for (auto& item : x.view()) {
    auto len = static_cast<uint32_t>(item.key.size());
    auto value = item.value;
    if (auto err = sink(len, value))
      return err;
  }
  count(sent_batches);
  count(sent_slices, n);
  count(sent_bytes, static_cast<int64_t>(total));
  return caf::none;
}

// Reads the wire format slice_batch and key_batch share: the item count,
// every key's bytes as one binary (into `keys`), then a (length, value)
// pair per item, calling `item(offset, length, value)` for each. Checks the
// count against `capacity` and that the lengths add up to the bytes sent.
// On an error the caller empties its batch.
template <class OnItem>
caf::error load_keyed_batch(caf::deserializer& source, const char* type,
                            uint32_t capacity, slice& keys, OnItem item) {
  uint32_t n = 0;
  size_t total = 0;
  if (auto err = source(n))
    return reject_truncated(type, err);
  if (n > capacity)
    return reject(errc::malformed, std::string{type} + ": "
                                     + std::to_string(n) + " items (capacity "
                                     + std::to_string(capacity) + ")");
  if (auto err = source.begin_sequence(total))
    return reject_truncated(type, err);
  if (total > size_t{n} * kMaxRemoteSliceBytes)
    return reject(errc::too_large, std::string{type} + ": "
                                     + std::to_string(total)
                                     + " key bytes for " + std::to_string(n)
                                     + " items");
  if (auto err = read_binary(source, total, type, keys))
    return err;
  if (auto err = source.end_sequence())
    return reject_truncated(type, err);
  size_t offset = 0;
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t len = 0;
    int64_t value = 0;
    if (auto err = source(len, value))
      return reject_truncated(type, err);
    if (len > total - offset)
      return reject(errc::malformed,
                    std::string{type} + ": key lengths exceed the "
                      + std::to_string(total) + " key bytes sent");
    item(offset, len, value);
    offset += len;
  }
  if (offset != total)
    return reject(errc::malformed, std::string{type} + ": "
                                     + std::to_string(total - offset)
                                     + " key bytes belong to no item");
  count(received_batches);
  count(received_slices, n);
  count(received_bytes, static_cast<int64_t>(total));
  return caf::none;
}

caf::error load_remote(caf::deserializer& source, slice_batch& x) {
  x = slice_batch{}; // on failure it holds nothing
  slice all;
  auto err = load_keyed_batch(
    source, "mayfly.slice_batch", slice_batch::kCapacity, all,
    [&](size_t offset, uint32_t len, int64_t value) {
      x.push(all.sub(offset, offset + len), value);
    });
  if (err)
    x = slice_batch{};
  return err;
}

// -- key_batch: the wire format of slice_batch ---------------------------------

caf::error save_remote(caf::serializer& sink, const key_batch& x) {
  MAYFLY_ASSERT(x.size <= key_batch::kCapacity);
  size_t total = 0;
  for (auto& item : x.view())
    total += item.length;
  uint32_t n = x.size;
  if (auto err = sink(n))
    return err;
  if (auto err = sink.begin_sequence(total))
    return err;
  for (auto& item : x.view()) {
    auto key = x.key(item);
    if (!key.empty())
      if (auto err = sink.apply_raw(key.size(), const_cast<char*>(key.data())))
        return err;
  }
  if (auto err = sink.end_sequence())
    return err;
  for (auto& item : x.view()) {
    auto len = item.length;
    auto value = item.value;
    if (auto err = sink(len, value))
      return err;
  }
  count(sent_batches);
  count(sent_slices, n);
  count(sent_bytes, static_cast<int64_t>(total));
  return caf::none;
}

caf::error load_remote(caf::deserializer& source, key_batch& x) {
  x.source.reset();
  x.size = 0;
  auto err = load_keyed_batch(
    source, "mayfly.key_batch", key_batch::kCapacity, x.source,
    [&](size_t offset, uint32_t len, int64_t value) {
      auto* base = reinterpret_cast<const char*>(x.source.data());
      std::string_view key{base + offset, len};
      // The hash is recomputed here, never taken from the network.
      x.items[x.size] = {static_cast<uint32_t>(offset), len, key_hash(key),
                         value};
      ++x.size;
    });
  if (err) {
    x.source.reset();
    x.size = 0;
  }
  return err;
}

std::string to_text(const key_batch& x) {
  std::string text = "[";
  for (auto& item : x.view()) {
    if (text.size() > 1)
      text += ", ";
    text += x.key(item);
    text += '=';
    text += std::to_string(item.value);
  }
  text += ']';
  return text;
}

// -- text -------------------------------------------------------------------------

std::string to_text(const slice& x) {
  return std::string{x.view()};
}

std::string to_text(const slice_batch& x) {
  std::string text = "[";
  for (auto& item : x.view()) {
    if (text.size() > 1)
      text += ", ";
    text += item.key.view();
    text += '=';
    text += std::to_string(item.value);
  }
  text += ']';
  return text;
}

} // namespace detail

// -- descriptions (runtime/metrics.hpp) ------------------------------------------

namespace {

using enum metric_kind;

// A counter's statistics path: its name with the first '_' made a '.'.
template <size_t N>
struct remote_path {
  char text[N]{};

  constexpr explicit remote_path(const char (&name)[N]) {
    bool cut = false;
    for (size_t i = 0; i < N; ++i) {
      text[i] = !cut && name[i] == '_' ? '.' : name[i];
      cut = cut || name[i] == '_';
    }
  }

  constexpr std::string_view view() const {
    return {text, N - 1};
  }
};

#define MAYFLY_X(name, kind, unit, help)                                       \
  constexpr remote_path kPath_##name{#name};
MAYFLY_REMOTE_COUNTERS(MAYFLY_X)
#undef MAYFLY_X

constexpr metric_info kRemoteMetrics[] = {
#define MAYFLY_X(name, kind, unit, help)                                       \
  {kPath_##name.view(), kind, unit, help},
  MAYFLY_REMOTE_COUNTERS(MAYFLY_X)
#undef MAYFLY_X
};

} // namespace

const metric_section remote_metrics{"remote", "/remote", kRemoteMetrics};

} // namespace mayfly
