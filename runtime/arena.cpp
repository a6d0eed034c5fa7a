#include <mayfly/runtime/arena.hpp>

#include <mayfly/runtime/heap.hpp>

namespace mayfly {

namespace {

constexpr size_t kHeader = 64; // block header, rounded to a cache line

constexpr size_t align_up(size_t n, size_t a) {
  return (n + a - 1) & ~(a - 1);
}

} // namespace

// -- arena_pool -----------------------------------------------------------------

result<std::unique_ptr<arena_pool>> arena_pool::make(arena_pool_config cfg) {
  if (cfg.block_size < 2 * kHeader)
    return {errc::invalid_config, "arena block_size must be >= 128"};
  if (cfg.max_arena_bytes < cfg.block_size - kHeader)
    return {errc::invalid_config,
            "arena max_arena_bytes must be >= one block's payload"};
  slot_pool::options opts;
  opts.name = "arena";
  opts.slot_size = cfg.block_size;
  opts.capacity = cfg.capacity;
  opts.huge_pages = cfg.huge_pages;
  opts.prefault = cfg.prefault;
  auto blocks = slot_pool::make(std::move(opts));
  if (!blocks)
    return blocks.error();
  return std::unique_ptr<arena_pool>{
    new arena_pool(std::move(*blocks), cfg.max_arena_bytes)};
}

arena_pool::arena_pool(std::unique_ptr<slot_pool> blocks,
                       size_t max_arena_bytes)
  : blocks_(std::move(blocks)), max_arena_bytes_(max_arena_bytes) {
}

nlohmann::json arena_pool::stats() const {
  nlohmann::json out = {
    {"block_size", block_size()},
    {"capacity", blocks_->capacity()},
    {"blocks_in_use", blocks_in_use()},
    {"blocks_peak", blocks_->peak()},
    {"leases_out", leases_out()},
    {"max_arena_bytes", max_arena_bytes_},
    {"bytes_used",
     {{"p50", high_water_.quantile(0.5)},
      {"p99", high_water_.quantile(0.99)},
      {"max", high_water_.max()}}},
  };
#define MAYFLY_X(name, kind, unit, help) out[#name] = count(name);
  MAYFLY_ARENA_COUNTERS(MAYFLY_X)
#undef MAYFLY_X
  return out;
}

// -- arena ----------------------------------------------------------------------

arena_lease arena_pool::lease() noexcept {
  counters_.add(leases);
  auto slot = blocks_->acquire();
  if (slot == slot_pool::kNoSlot) {
    counters_.add(lease_failures);
    return {};
  }
  return arena_lease{this, slot};
}

arena_lease& arena_lease::operator=(arena_lease&& other) noexcept {
  arena_lease tmp{std::move(other)};
  std::swap(pool_, tmp.pool_);
  std::swap(slot_, tmp.slot_);
  return *this;
}

arena_lease::~arena_lease() {
  if (slot_ != slot_pool::kNoSlot) {
    // Never turned into an arena: an arena that lived and died empty.
    pool_->blocks_->release(slot_);
    pool_->counters_.add(arena_pool::returns);
  }
}

arena::arena(arena_lease lease) noexcept : pool_(lease.pool_) {
  if (!lease)
    return;
  limit_ = pool_->max_arena_bytes_;
  auto slot = std::exchange(lease.slot_, slot_pool::kNoSlot);
  first_ = new (pool_->blocks_->data(slot))
    block_header{nullptr, slot, pool_->blocks_->slot_size()};
  blocks_ = 1;
  start_block(first_);
}

void arena::max_bytes(size_t limit) noexcept {
  if (first_ == nullptr)
    return;
  limit_ = std::max(limit, pool_->block_size() - kHeader);
}

void arena::release() noexcept {
  if (first_ == nullptr)
    return;
  reset();
  release_block(std::exchange(first_, nullptr));
  block_begin_ = cur_ = end_ = nullptr;
  blocks_ = 0;
  pool_->counters_.add(arena_pool::returns);
}

void arena::start_block(block_header* blk) noexcept {
  block_begin_ = reinterpret_cast<std::byte*>(blk) + kHeader;
  cur_ = block_begin_;
  end_ = reinterpret_cast<std::byte*>(blk) + blk->size;
}

void arena::release_block(block_header* blk) noexcept {
  if (blk->slot == slot_pool::kNoSlot)
    detail::heap_free(blk);
  else
    pool_->blocks_->release(blk->slot);
}

void* arena::allocate_slow(size_t n, size_t align) noexcept {
  if (first_ == nullptr)
    return nullptr;
  auto& counters = pool_->counters_;
  // Written so that no sum can wrap: `n` may be anything (an underflowed
  // length). Padding for over-aligned requests counts against the limit.
  size_t max = limit_;
  size_t used = bytes_used();
  size_t pad = align > kHeader ? align : 0;
  if (used > max || n > max - used || pad > max - used - n) {
    counters.add(arena_pool::limit_failures);
    return nullptr;
  }
  size_t payload = pool_->block_size() - kHeader;
  size_t need = n + pad;
  // The fast path checks only the block's end: keep that end within the
  // limit, so bytes_used() never exceeds max_arena_bytes.
  auto clamp_to_limit = [this, max] {
    size_t room = max - used_before_;
    if (static_cast<size_t>(end_ - block_begin_) > room)
      end_ = block_begin_ + room;
  };
  if (need > payload) {
    // Larger than a block: a heap chunk of its own; keep bumping in the
    // current block afterwards.
    if (need > SIZE_MAX - kHeader)
      return nullptr;
    size_t size = kHeader + need;
    void* mem = detail::heap_alloc(size, kHeader);
    if (mem == nullptr)
      return nullptr;
    extra_ = new (mem) block_header{extra_, slot_pool::kNoSlot, size};
    counters.add(arena_pool::oversize_allocs);
    used_before_ += n;
    clamp_to_limit();
    auto p = align_up(reinterpret_cast<uintptr_t>(mem) + kHeader, align);
    return reinterpret_cast<void*>(p);
  }
  // The current block is full: chain a new one. The tail of the old block
  // stays unused until reset.
  void* mem = nullptr;
  uint32_t slot = pool_->blocks_->acquire();
  if (slot != slot_pool::kNoSlot) {
    mem = pool_->blocks_->data(slot);
    counters.add(arena_pool::overflow_blocks);
  } else {
    mem = detail::heap_alloc(pool_->block_size(), kHeader);
    if (mem == nullptr)
      return nullptr;
    counters.add(arena_pool::heap_blocks);
  }
  used_before_ += static_cast<size_t>(cur_ - block_begin_);
  extra_ = new (mem) block_header{extra_, slot, pool_->block_size()};
  ++blocks_;
  ++overflows_;
  start_block(extra_);
  clamp_to_limit();
  auto p = align_up(reinterpret_cast<uintptr_t>(cur_), align);
  cur_ = reinterpret_cast<std::byte*>(p + n);
  return reinterpret_cast<void*>(p);
}

void arena::run_cleanups() noexcept {
  int64_t ran = 0;
  while (cleanups_ != nullptr) {
    auto* node = cleanups_;
    cleanups_ = node->next;
    node->destroy(node->obj);
    ++ran;
  }
  if (ran > 0)
    pool_->counters_.add(arena_pool::cleanups, ran);
}

void arena::reset() noexcept {
  if (first_ == nullptr)
    return;
  run_cleanups();
  auto used = bytes_used();
  high_water_ = std::max(high_water_, used);
  pool_->high_water_.record(used);
  pool_->counters_.add(arena_pool::resets);
  while (extra_ != nullptr) {
    auto* next = extra_->next;
    release_block(extra_);
    extra_ = next;
  }
  used_before_ = 0;
  blocks_ = 1;
  start_block(first_);
}

// -- descriptions (runtime/metrics.hpp) ------------------------------------------

namespace {

using enum metric_kind;

constexpr metric_info kArenaPoolMetrics[] = {
  {"block_size", config, "bytes", "bytes per block"},
  {"capacity", config, "", "blocks in the pool"},
  {"blocks_in_use", gauge, "",
   "blocks leased now (first and overflow blocks)"},
  {"blocks_peak", peak, "", "most blocks out at once (as `pools.*.peak`)"},
  {"leases_out", gauge, "", "arenas alive"},
#define MAYFLY_X(name, kind, unit, help) {#name, kind, unit, help},
  MAYFLY_ARENA_COUNTERS(MAYFLY_X)
#undef MAYFLY_X
  {"max_arena_bytes", config, "bytes", "most bytes one arena may hold"},
  {"bytes_used", distribution, "bytes",
   "bytes an arena had in use when reset, over all arenas since start: the "
   "arena high-water mark"},
};

} // namespace

const metric_section arena_pool_metrics{"arenas", "/arenas",
                                        kArenaPoolMetrics};

} // namespace mayfly
