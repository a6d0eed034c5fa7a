#pragma once

/// @file
/// Configuration of the memory layer, and the JSON reader every layer uses
/// for its own section.
///
/// Defaults are chosen for a small service on a 2-core machine (see
/// docs/guide.md): 8192 standard slots (16 MiB), 128 jumbo slots (8 MiB),
/// 2048 arena blocks of 16 KiB (32 MiB). Every field can be set from JSON:
///
/// ```json
/// { "buffers": { "standard_slot_size": 2048, "standard_capacity": 8192,
///                "jumbo_slot_size": 65536, "jumbo_capacity": 128,
///                "huge_pages": true, "prefault": true },
///   "arenas":  { "block_size": 16384, "capacity": 2048,
///                "max_arena_bytes": 1048576 } }
/// ```
///
/// Unknown fields and values of the wrong type or range are rejected with an
/// error whose `subject` names the field ("buffers.standard_capacity").

#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include <mayfly/runtime/arena.hpp>
#include <mayfly/runtime/buffer_pool.hpp>
#include <mayfly/runtime/result.hpp>

namespace mayfly {

/// Sizes of every pool of the memory layer.
struct memory_config {
  buffer_pools_config buffers;
  arena_pool_config arenas;
};

/// Reads fields of one JSON object with validation; remembers the first
/// error, naming the field by its dotted path. Cold path (allocates).
class config_reader {
public:
  /// Reads `obj`, whose fields are named `prefix.field` in errors.
  config_reader(const nlohmann::json& obj, std::string prefix);

  /// Unsigned integer in [min, max]; leaves `out` alone when absent.
  config_reader& read(const char* field, uint64_t& out, uint64_t min = 0,
                      uint64_t max = UINT64_MAX);
  config_reader& read(const char* field, uint32_t& out, uint32_t min = 0,
                      uint32_t max = UINT32_MAX);
  config_reader& read(const char* field, bool& out);
  config_reader& read(const char* field, std::string& out);
  config_reader& read(const char* field, double& out, double min, double max);

  /// A string naming one of `choices`: `out` takes its value; leaves `out`
  /// alone when absent; any other string fails with `expected` (a static
  /// string such as `expected "a" or "b"`).
  template <class T>
  config_reader&
  choose(const char* field, T& out,
         std::initializer_list<std::pair<const char*, T>> choices,
         const char* expected) {
    std::string name;
    if (!obj_->contains(field) || !read(field, name).ok())
      return *this;
    for (const auto& [choice, value] : choices) {
      if (name == choice) {
        out = value;
        return *this;
      }
    }
    fail(field, expected);
    return *this;
  }

  /// A sub-object (an empty object when absent); errors if not an object.
  const nlohmann::json& object(const char* field);

  /// Flags every field not in `known` as unknown.
  config_reader& only(std::initializer_list<const char*> known);

  /// The first error, if any.
  bool ok() const noexcept {
    return !failed_;
  }

  const error_info& error() const noexcept {
    return error_;
  }

  /// Records an error for `field` (first one wins).
  void fail(const char* field, const char* what);

  /// Dotted name of `field`.
  std::string path(const char* field) const;

private:
  const nlohmann::json* obj_;
  std::string prefix_;
  bool failed_ = false;
  error_info error_{errc::invalid_config, "", 0, {}};
};

/// Parses a memory section (see file comment) on top of `defaults`.
result<memory_config> parse_memory_config(const nlohmann::json& j,
                                          memory_config defaults = {},
                                          std::string prefix = "");

} // namespace mayfly
