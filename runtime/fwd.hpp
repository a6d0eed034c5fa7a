#pragma once

/// @file
/// Forward declarations of the memory layer's public types.

namespace mayfly {

class arena;
class arena_pool;
class buffer_pool;
class buffer_pools;
class mutable_buffer;
class slice;
class slot_pool;
class stats_registry;
struct arena_pool_config;
struct buffer_pools_config;
struct error_info;
struct memory_config;
template <class T>
class result;

} // namespace mayfly
