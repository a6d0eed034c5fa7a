#include <mayfly/runtime/buffer_pool.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <new>

#include <mayfly/runtime/heap.hpp>

namespace mayfly {

namespace {

int64_t now_ns() noexcept {
  using namespace std::chrono;
  return duration_cast<nanoseconds>(steady_clock::now().time_since_epoch())
    .count();
}

enum dedicated_counter {
  dedicated_allocs,
  dedicated_frees,
  dedicated_bytes,
  num_dedicated_counters
};

sharded_counters<num_dedicated_counters>& dedicated_counters() noexcept {
  static sharded_counters<num_dedicated_counters> counters;
  return counters;
}

// A dedicated binary: header and bytes in one allocation, bytes 64-aligned.
constexpr size_t kDedicatedHeader
  = (sizeof(detail::binary_header) + 63) / 64 * 64;

} // namespace

// -- binaries -------------------------------------------------------------------

namespace detail {

binary_header* make_dedicated_binary(size_t capacity) noexcept {
  if (capacity > UINT32_MAX)
    return nullptr;
  void* mem = heap_alloc(kDedicatedHeader + capacity, 64);
  if (mem == nullptr)
    return nullptr;
  auto* hdr = new (mem) binary_header;
  hdr->counts.store(detail::counts_of(1, 0), std::memory_order_relaxed);
  hdr->data = static_cast<std::byte*>(mem) + kDedicatedHeader;
  hdr->capacity = static_cast<uint32_t>(capacity);
  auto& c = dedicated_counters();
  c.add(dedicated_allocs);
  c.add(dedicated_bytes, static_cast<int64_t>(capacity));
  return hdr;
}

void destroy_binary(binary_header* hdr) noexcept {
  if (hdr->pool != nullptr) {
    hdr->pool->release(hdr);
    return;
  }
  auto& c = dedicated_counters();
  c.add(dedicated_frees);
  c.add(dedicated_bytes, -static_cast<int64_t>(hdr->capacity));
  hdr->~binary_header();
  heap_free(hdr);
}

} // namespace detail

// -- slice ----------------------------------------------------------------------

slice slice::copy_of(const void* src, size_t n) noexcept {
  if (n == 0)
    return {};
  auto buf = mutable_buffer::dedicated(n);
  if (!buf)
    return {};
  std::memcpy(buf.data(), src, n);
  return std::move(buf).freeze(n);
}

slice slice::detach() const noexcept {
  if (owner_ == nullptr)
    return {};
  if (owner_->pool == nullptr && data_ == owner_->data
      && size_ == owner_->capacity)
    return *this; // already exactly its own dedicated binary
  if (size_ == 0)
    return {};
  return copy_of(data_, size_);
}

int64_t slice::live_count() noexcept {
  return detail::slice_stats.sum(0);
}

int64_t slice::viewed_bytes() noexcept {
  return detail::slice_stats.sum(1);
}

// -- mutable_buffer ---------------------------------------------------------------

mutable_buffer mutable_buffer::dedicated(size_t capacity) noexcept {
  auto* hdr = detail::make_dedicated_binary(capacity);
  return hdr ? mutable_buffer{hdr} : mutable_buffer{};
}

namespace {

// A binary's age counts from its first freeze: a slot waiting to be filled
// (a receive batch, a send buffer) is not a binary yet.
void mark_born(detail::binary_header* hdr) noexcept {
  if (hdr->born_ns.load(std::memory_order_relaxed) == 0)
    hdr->born_ns.store(now_ns(), std::memory_order_relaxed);
}

// Adds `n` frozen bytes. Only the binary's one mutable_buffer writes `size`
// (the census only reads it), so a load and a store do: no atomic add.
void add_frozen(detail::binary_header* hdr, size_t n) noexcept {
  hdr->size.store(hdr->size.load(std::memory_order_relaxed)
                    + static_cast<uint32_t>(n),
                  std::memory_order_relaxed);
}

} // namespace

slice mutable_buffer::split_to(size_t n) noexcept {
  MAYFLY_ASSERT(hdr_ != nullptr && n <= capacity());
  mark_born(hdr_);
  add_frozen(hdr_, n);
  slice result{begin_, n, hdr_, slice::add_ref_tag{}};
  begin_ += n;
  return result;
}

slice mutable_buffer::freeze(size_t n) && noexcept {
  MAYFLY_ASSERT(hdr_ != nullptr && n <= capacity());
  mark_born(hdr_);
  add_frozen(hdr_, n);
  detail::change_view(hdr_, static_cast<int64_t>(n)); // the reference views n
  slice result{begin_, n, std::exchange(hdr_, nullptr), slice::adopt_ref_tag{}};
  begin_ = end_ = nullptr;
  return result;
}

// -- buffer_pool ------------------------------------------------------------------

result<std::unique_ptr<buffer_pool>>
buffer_pool::make(slot_pool::options opts) {
  // The slot pool rounds the size up to 64 bytes; the rounded size must
  // still fit a binary's 32-bit capacity.
  if (opts.slot_size > UINT32_MAX - 63)
    return {errc::invalid_config, "slot_size must fit in 32 bits"};
  auto slots = slot_pool::make(std::move(opts));
  if (!slots)
    return slots.error();
  return std::unique_ptr<buffer_pool>{new buffer_pool(std::move(*slots))};
}

buffer_pool::buffer_pool(std::unique_ptr<slot_pool> slots)
  : slots_(std::move(slots)),
    headers_(new detail::binary_header[slots_->capacity()]) {
  for (uint32_t i = 0; i < slots_->capacity(); ++i) {
    auto& h = headers_[i];
    h.slot = i;
    h.pool = this;
    h.data = slots_->data(i);
    h.capacity = static_cast<uint32_t>(slots_->slot_size());
  }
}

mutable_buffer buffer_pool::try_acquire() noexcept {
  auto slot = slots_->acquire();
  if (slot == slot_pool::kNoSlot)
    return {};
  auto* hdr = &headers_[slot];
  hdr->size.store(0, std::memory_order_relaxed);
  hdr->holder.store(0, std::memory_order_relaxed);
  hdr->flags.store(0, std::memory_order_relaxed);
  hdr->born_ns.store(0, std::memory_order_relaxed); // set by the first freeze
  // Release: the census reads the fields above after seeing a count > 0.
  hdr->counts.store(detail::counts_of(1, 0), std::memory_order_release);
  return mutable_buffer{hdr};
}

result<mutable_buffer> buffer_pool::acquire() noexcept {
  auto buf = try_acquire();
  if (!buf)
    return {errc::pool_exhausted, "buffer pool exhausted"};
  return buf;
}

void buffer_pool::release(detail::binary_header* hdr) noexcept {
  MAYFLY_ASSERT(hdr->pool == this);
  // The last reference is gone (acq_rel in drop_ref): every flag set
  // through another reference is visible here.
  auto flags = hdr->flags.load(std::memory_order_relaxed);
  if ((flags & detail::detached_for_holder) != 0
      && (flags & detail::sent_to_holder) == 0)
    early_.add(0);
  slots_->release(hdr->slot);
}

binary_census buffer_pool::census(std::vector<holder_usage>* by_holder) const {
  binary_census c;
  auto now = now_ns();
  for (uint32_t i = 0; i < slots_->capacity(); ++i) {
    auto& h = headers_[i];
    auto counts = h.counts.load(std::memory_order_acquire);
    auto refs = detail::ref_count(counts);
    if (refs == 0)
      continue;
    auto born = h.born_ns.load(std::memory_order_relaxed);
    if (born == 0) {
      ++c.writable; // held to be filled; nothing frozen yet
      continue;
    }
    ++c.live;
    c.live_bytes += h.size.load(std::memory_order_relaxed);
    c.pinned_bytes += h.capacity;
    auto bucket = refs <= 1 ? 0 : refs <= 2 ? 1 : refs <= 4 ? 2 : refs <= 8 ? 3 : 4;
    ++c.refs[bucket];
    auto age = now - born;
    auto holder = h.holder.load(std::memory_order_relaxed);
    if (age > c.oldest_age_ns) {
      c.oldest_age_ns = age;
      c.oldest_holder = holder;
      c.oldest_slot = i;
    }
    if (by_holder != nullptr) {
      if (holder >= by_holder->size())
        by_holder->resize(holder + 1);
      auto& u = (*by_holder)[holder];
      ++u.binaries;
      u.viewed_bytes += detail::viewed_of(counts);
      u.pinned_bytes += h.capacity;
      u.oldest_age_ns = std::max(u.oldest_age_ns, age);
    }
  }
  return c;
}

nlohmann::json buffer_pool::stats() const {
  auto& s = *slots_;
  auto c = census();
  nlohmann::json out = {
    {"slot_size", s.slot_size()},
    {"capacity", s.capacity()},
    {"in_use", s.in_use()},
    {"peak", s.peak()},
    {"thread_cache_limit", s.thread_cache_limit()},
    {"region_bytes", s.region_bytes()},
    {"pages", s.page_kind()},
    {"binaries",
     {{"live", c.live},
      {"live_bytes", c.live_bytes},
      {"pinned_bytes", c.pinned_bytes},
      {"refs", {{"1", c.refs[0]}, {"2", c.refs[1]}, {"3-4", c.refs[2]},
                {"5-8", c.refs[3]}, {"9+", c.refs[4]}}},
      {"oldest_age_ms", static_cast<double>(c.oldest_age_ns) / 1e6},
      {"oldest_holder", c.oldest_holder},
      {"writable", c.writable}}},
  };
#define MAYFLY_X(name, kind, unit, help) out[#name] = s.count(slot_pool::name);
  MAYFLY_SLOT_POOL_COUNTERS(MAYFLY_X)
#undef MAYFLY_X
  return out;
}

// -- buffer_pools -------------------------------------------------------------------

result<std::unique_ptr<buffer_pools>>
buffer_pools::make(buffer_pools_config cfg) {
  std::unique_ptr<buffer_pools> self{new buffer_pools};
  slot_pool::options opts;
  opts.name = "standard";
  opts.slot_size = cfg.standard_slot_size;
  opts.capacity = cfg.standard_capacity;
  opts.huge_pages = cfg.huge_pages;
  opts.prefault = cfg.prefault;
  auto standard = buffer_pool::make(opts);
  if (!standard)
    return standard.error();
  self->standard_ = std::move(*standard);
  if (cfg.jumbo_slot_size > 0 && cfg.jumbo_capacity > 0) {
    if (cfg.jumbo_slot_size <= cfg.standard_slot_size)
      return {errc::invalid_config,
              "jumbo_slot_size must exceed standard_slot_size"};
    opts.name = "jumbo";
    opts.slot_size = cfg.jumbo_slot_size;
    opts.capacity = cfg.jumbo_capacity;
    auto jumbo = buffer_pool::make(opts);
    if (!jumbo)
      return jumbo.error();
    self->jumbo_ = std::move(*jumbo);
  }
  return self;
}

result<mutable_buffer> buffer_pools::acquire(size_t n) noexcept {
  if (n <= standard_->slot_size())
    return standard_->acquire();
  if (jumbo_ && n <= jumbo_->slot_size())
    return jumbo_->acquire();
  auto buf = mutable_buffer::dedicated(n);
  if (!buf)
    return {errc::out_of_memory, "dedicated buffer allocation failed"};
  return buf;
}

int64_t buffer_pools::outstanding() const noexcept {
  int64_t n = standard_->slots().in_use() + dedicated_binaries::live();
  if (jumbo_)
    n += jumbo_->slots().in_use();
  return n;
}

nlohmann::json buffer_pools::stats() const {
  auto doc = nlohmann::json::object();
  doc["standard"] = standard_->stats();
  if (jumbo_)
    doc["jumbo"] = jumbo_->stats();
  doc["dedicated"] = {{"allocations", dedicated_binaries::allocations()},
                      {"live", dedicated_binaries::live()},
                      {"live_bytes", dedicated_binaries::live_bytes()}};
  return doc;
}

int64_t dedicated_binaries::allocations() noexcept {
  return dedicated_counters().sum(dedicated_allocs);
}

int64_t dedicated_binaries::live() noexcept {
  auto& c = dedicated_counters();
  return c.sum(dedicated_allocs) - c.sum(dedicated_frees);
}

int64_t dedicated_binaries::live_bytes() noexcept {
  return dedicated_counters().sum(dedicated_bytes);
}

// -- descriptions (runtime/metrics.hpp) ------------------------------------------

namespace {

using enum metric_kind;

constexpr metric_info kPoolClassMetrics[] = {
  {"slot_size", config, "bytes", "bytes per slot (rounded up to 64)"},
  {"capacity", config, "", "slots in the pool"},
  {"in_use", gauge, "", "slots held now (acquired minus released), exact"},
  {"peak", peak, "",
   "most slots out of the shared free list at once; slots parked in "
   "per-thread caches count as out, so this can exceed the peak of `in_use` "
   "by the cached slots"},
#define MAYFLY_X(name, kind, unit, help) {#name, kind, unit, help},
  MAYFLY_SLOT_POOL_COUNTERS(MAYFLY_X)
#undef MAYFLY_X
  {"thread_cache_limit", config, "",
   "most slots one thread keeps cached (0: caching off)"},
  {"region_bytes", config, "bytes", "size of the pool's mapping"},
  {"pages", text, "",
   "`hugetlb`, `thp` (transparent huge pages granted) or `none`"},
  {"binaries.live", gauge, "",
   "slots holding a live binary: something was frozen into them and is "
   "still referenced (a census of the slot headers)"},
  {"binaries.writable", gauge, "",
   "slots held as writable buffers with nothing frozen yet (the receive "
   "loop's ready batch, send buffers being filled): in use, but not "
   "binaries, and in none of the other `binaries.*` figures"},
  {"binaries.live_bytes", gauge, "bytes",
   "bytes frozen into those binaries (datagram sizes)"},
  {"binaries.pinned_bytes", gauge, "bytes",
   "slot bytes those binaries keep alive (`live` × slot size)"},
  {"binaries.refs.{refs}", gauge, "",
   "live binaries by reference count; `<refs>` is `1`, `2`, `3-4`, `5-8` "
   "or `9+`"},
  {"binaries.oldest_age_ms", gauge, "ms",
   "age of the oldest live binary, counted from its first freeze (for a "
   "datagram: its receipt); 0: none"},
  {"binaries.oldest_holder", identifier, "",
   "holder tag of the oldest binary (`runtime::holder_tag`; 0: none "
   "recorded); `binaries.oldest_holder` in the top-level section gives its "
   "name"},
};

constexpr metric_info kDedicatedMetrics[] = {
  {"allocations", counter, "", "dedicated binaries made"},
  {"live", gauge, "", "dedicated binaries alive"},
  {"live_bytes", gauge, "bytes", "their bytes"},
};

} // namespace

const metric_section pool_class_metrics{"pools", "/pools/{pool}",
                                        kPoolClassMetrics};
const metric_section dedicated_pool_metrics{"pools.dedicated",
                                            "/pools/{pool}",
                                            kDedicatedMetrics};

} // namespace mayfly
