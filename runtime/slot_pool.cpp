#include <mayfly/runtime/slot_pool.hpp>

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#if defined(__has_feature)
#  if __has_feature(address_sanitizer)
#    define MAYFLY_ASAN 1
#  endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#  define MAYFLY_ASAN 1
#endif
#ifdef MAYFLY_ASAN
#  include <sanitizer/asan_interface.h>
#endif

namespace mayfly {

namespace {

constexpr size_t kHugePage = size_t{2} << 20;
constexpr uint32_t kMaxCache = 64;  // slots per pool per thread, at most
constexpr size_t kCacheEntries = 32; // pools with a per-thread cache, at most

// -- registry of live pools ---------------------------------------------------

// A thread's cache outlives pools it cached for; at thread exit it may only
// hand slots back to pools that still exist. Pools register here; the lock is
// taken at pool creation/destruction and when a thread exits or evicts a
// cache entry, never per datagram.
struct live_pools {
  std::mutex mtx;
  std::vector<slot_pool*> pools; // guarded by mtx
  bool index_used[kCacheEntries] = {}; // guarded by mtx

  // A free per-thread cache index, or kNoCacheIndex.
  uint32_t take_index() {
    for (uint32_t i = 0; i < kCacheEntries; ++i)
      if (!index_used[i]) {
        index_used[i] = true;
        return i;
      }
    return slot_pool::kNoCacheIndex;
  }

  bool contains(const slot_pool* p, uint64_t uid) {
    return std::any_of(pools.begin(), pools.end(), [&](slot_pool* x) {
      return x == p && x->uid() == uid;
    });
  }
};

live_pools& registry() {
  static auto* r = new live_pools; // leaked: thread exits may run after main
  return *r;
}

std::atomic<uint64_t> next_uid{1};

// -- per-thread cache ---------------------------------------------------------

struct cache_entry {
  slot_pool* pool = nullptr;
  uint64_t uid = 0;
  uint32_t count = 0;
  uint32_t slots[kMaxCache];
};

// Entry i of every thread's cache belongs to the pool holding cache index i
// (assigned at creation, see slot_pool::cache_index_), so finding it is one
// indexed load and a uid check, no search.
struct thread_cache {
  cache_entry entries[kCacheEntries];

  cache_entry& entry_for(slot_pool* pool, uint32_t index) noexcept {
    auto& e = entries[index];
    if (__builtin_expect(e.pool == pool && e.uid == pool->uid(), 1))
      return e;
    flush(e); // a destroyed pool's leftovers (index reused)
    e.pool = pool;
    e.uid = pool->uid();
    e.count = 0;
    return e;
  }

  // Hands the entry's slots back if its pool still exists.
  static void flush(cache_entry& e) noexcept {
    if (e.pool != nullptr && e.count > 0) {
      auto& reg = registry();
      std::lock_guard<std::mutex> guard{reg.mtx};
      if (reg.contains(e.pool, e.uid))
        e.pool->give_batch(e.slots, e.count);
    }
    e.pool = nullptr;
    e.count = 0;
  }

  ~thread_cache() {
    for (auto& e : entries)
      flush(e);
  }
};

// The fast path reads one initial-exec TLS pointer; the first use on a
// thread creates the cache and an owner whose destructor flushes it when the
// thread exits (registering that destructor is what makes a plain
// `thread_local thread_cache` slow to reach: a guard and a call each time).
thread_local thread_cache* tls_cache __attribute__((tls_model("initial-exec")))
= nullptr;

// Set when the thread's cache has been destroyed at thread exit. Thread-local
// objects destroyed after it (a per-thread writer holding a send buffer, a
// slice) may still release slots; those must bypass the cache, or they would
// sit in a dead cache forever and the pool would shrink.
thread_local bool tls_cache_gone __attribute__((tls_model("initial-exec")))
= false;

struct thread_cache_owner {
  thread_cache cache;
  ~thread_cache_owner() {
    tls_cache = nullptr;
    tls_cache_gone = true;
  }
};

thread_cache* make_thread_cache() noexcept {
  if (tls_cache_gone)
    return nullptr;
  thread_local thread_cache_owner owner;
  tls_cache = &owner.cache;
  return &owner.cache;
}

// The calling thread's cache; null once it has been torn down at exit.
inline thread_cache* this_thread_cache() noexcept {
  auto* c = tls_cache;
  if (__builtin_expect(c != nullptr, 1))
    return c;
  return make_thread_cache();
}

// Forgets the calling thread's cache entry for a pool being destroyed.
void forget_pool(slot_pool* pool) noexcept {
  auto* c = tls_cache;
  if (c == nullptr)
    return;
  for (auto& e : c->entries)
    if (e.pool == pool && e.uid == pool->uid()) {
      e.pool = nullptr;
      e.count = 0;
    }
}

} // namespace

// -- construction -------------------------------------------------------------

result<std::unique_ptr<slot_pool>> slot_pool::make(options opts) {
  if (opts.slot_size == 0)
    return {errc::invalid_config, "slot_size must be > 0"};
  if (opts.capacity == 0)
    return {errc::invalid_config, "capacity must be > 0"};
  if (opts.capacity == kNoSlot)
    return {errc::invalid_config, "capacity too large"};
  opts.slot_size = (opts.slot_size + 63) / 64 * 64;
  size_t bytes = opts.slot_size * opts.capacity;
  if (bytes / opts.capacity != opts.slot_size)
    return {errc::invalid_config, "slot_size * capacity overflows"};
  const char* page_kind = "none";
  size_t page = 4096;
  bool want_huge = opts.huge_pages && bytes >= kHugePage;
  if (want_huge)
    page = kHugePage;
  size_t mapped = (bytes + page - 1) / page * page;
  int populate = opts.prefault ? MAP_POPULATE : 0;
  void* mem = MAP_FAILED;
  if (want_huge) {
    // Explicit huge pages exist only where the admin reserved them; this
    // fails fast otherwise and we fall back to transparent huge pages.
    mem = mmap(nullptr, mapped, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | populate, -1, 0);
    if (mem != MAP_FAILED)
      page_kind = "hugetlb";
  }
  if (mem == MAP_FAILED) {
    // madvise must come before the pages are touched, so populate by hand.
    mem = mmap(nullptr, mapped, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
      return {errc::out_of_memory, "mmap of pool region failed", errno};
    if (want_huge && madvise(mem, mapped, MADV_HUGEPAGE) == 0)
      page_kind = "thp";
    if (opts.prefault)
      for (size_t off = 0; off < mapped; off += 4096)
        static_cast<volatile char*>(mem)[off] = 0;
  }
  auto* region = static_cast<std::byte*>(mem);
  return std::unique_ptr<slot_pool>{
    new slot_pool(opts, region, mapped, page_kind)};
}

slot_pool::slot_pool(options& opts, std::byte* region, size_t region_bytes,
                     const char* page_kind)
  : name_(std::move(opts.name)),
    region_(region),
    region_bytes_(region_bytes),
    slot_size_(opts.slot_size),
    capacity_(opts.capacity),
    // Small pools do not cache: exhaustion is then exact at capacity, which
    // matters more for them than lock-free acquisition.
    cache_limit_(opts.capacity < 64 ? 0
                                    : std::min(kMaxCache, opts.capacity / 16)),
    page_kind_(page_kind),
    uid_(next_uid.fetch_add(1)),
    acquired_by_(new uint32_t[opts.capacity]()) {
  free_.reserve(capacity_);
  // Reverse order: slot 0 is handed out first (nicer to read in tests).
  for (uint32_t i = capacity_; i > 0; --i) {
    free_.push_back(i - 1);
    poison(i - 1);
  }
  auto& reg = registry();
  std::lock_guard<std::mutex> guard{reg.mtx};
  reg.pools.push_back(this);
  if (cache_limit_ > 0) {
    cache_index_ = reg.take_index();
    if (cache_index_ == kNoCacheIndex)
      cache_limit_ = 0; // too many pools alive: this one goes uncached
  }
}

slot_pool::~slot_pool() {
  {
    auto& reg = registry();
    std::lock_guard<std::mutex> guard{reg.mtx};
    reg.pools.erase(std::find(reg.pools.begin(), reg.pools.end(), this));
    if (cache_index_ != kNoCacheIndex)
      reg.index_used[cache_index_] = false;
  }
  forget_pool(this);
  auto outstanding = in_use();
  if (outstanding != 0) {
    std::fprintf(stderr,
                 "mayfly: pool '%s' destroyed with %lld slots outstanding\n",
                 name_.c_str(), static_cast<long long>(outstanding));
    MAYFLY_ASSERT(outstanding == 0);
  }
#ifdef MAYFLY_ASAN
  ASAN_UNPOISON_MEMORY_REGION(region_, region_bytes_);
#endif
  munmap(region_, region_bytes_);
}

// -- acquire / release --------------------------------------------------------

uint32_t slot_pool::acquire() noexcept {
  uint32_t slot = kNoSlot;
  thread_cache* cache = cache_limit_ > 0 ? this_thread_cache() : nullptr;
  if (cache != nullptr) {
    auto& e = cache->entry_for(this, cache_index_);
    if (e.count == 0) {
      // Refill half the cache at once: one lock per cache_limit/2 slots.
      e.count = take_batch(e.slots, std::max<uint32_t>(1, cache_limit_ / 2));
      counters_.add(refills);
    }
    if (e.count > 0)
      slot = e.slots[--e.count];
  } else if (take_batch(&slot, 1) == 0) {
    slot = kNoSlot;
  }
  if (slot == kNoSlot) {
    counters_.add(exhausted);
    return kNoSlot;
  }
  unpoison(slot);
  acquired_by_[slot] = detail::this_thread_index();
  counters_.add(acquisitions);
  return slot;
}

void slot_pool::release(uint32_t slot) noexcept {
  MAYFLY_ASSERT(slot < capacity_);
  auto self = detail::this_thread_index();
  if (acquired_by_[slot] != self)
    counters_.add(cross_thread_releases);
  counters_.add(releases);
  poison(slot);
  thread_cache* cache = cache_limit_ > 0 ? this_thread_cache() : nullptr;
  if (cache == nullptr) {
    give_batch(&slot, 1);
    return;
  }
  auto& e = cache->entry_for(this, cache_index_);
  if (e.count == cache_limit_) {
    // Full: hand the older half back in one lock, keep the warm half.
    auto half = cache_limit_ / 2;
    give_batch(e.slots, half);
    std::memmove(e.slots, e.slots + half, (e.count - half) * sizeof(uint32_t));
    e.count -= half;
  }
  e.slots[e.count++] = slot;
}

uint32_t slot_pool::take_batch(uint32_t* out, uint32_t n) noexcept {
  std::lock_guard<std::mutex> guard{mtx_};
  auto k = std::min<size_t>(n, free_.size());
  for (size_t i = 0; i < k; ++i) {
    out[i] = free_.back();
    free_.pop_back();
  }
  peak_ = std::max(peak_, capacity_ - static_cast<uint32_t>(free_.size()));
  return static_cast<uint32_t>(k);
}

void slot_pool::give_batch(const uint32_t* slots, uint32_t n) noexcept {
  std::lock_guard<std::mutex> guard{mtx_};
  MAYFLY_ASSERT(free_.size() + n <= capacity_);
  free_.insert(free_.end(), slots, slots + n); // capacity reserved: no alloc
}

uint32_t slot_pool::peak() const noexcept {
  std::lock_guard<std::mutex> guard{mtx_};
  return peak_;
}

uint32_t slot_pool::slot_of(const void* ptr) const noexcept {
  auto* p = static_cast<const std::byte*>(ptr);
  if (p < region_ || p >= region_ + slot_size_ * capacity_)
    return kNoSlot;
  return static_cast<uint32_t>(static_cast<size_t>(p - region_) / slot_size_);
}

void slot_pool::poison([[maybe_unused]] uint32_t slot) noexcept {
#ifdef MAYFLY_ASAN
  ASAN_POISON_MEMORY_REGION(data(slot), slot_size_);
#endif
}

void slot_pool::unpoison([[maybe_unused]] uint32_t slot) noexcept {
#ifdef MAYFLY_ASAN
  ASAN_UNPOISON_MEMORY_REGION(data(slot), slot_size_);
#endif
}

} // namespace mayfly
