// Fuzz target: API sequences on the memory layer. Each input byte is an
// operation on a small pool set, an arena pool and a table of live slices:
// acquire, write, freeze/split, copy, sub-slice, slice_ref, detach, forward
// to another thread (a bounded queue drained by a consumer that releases),
// arena allocations, make<slice>, reset, release. After every input all
// balances must be zero: slots in use, live slices, dedicated binaries,
// arena leases, mayfly's own heap blocks.

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <mayfly/runtime/arena.hpp>
#include <mayfly/runtime/bounded_queue.hpp>
#include <mayfly/runtime/buffer_pool.hpp>
#include <mayfly/runtime/heap.hpp>
#include <mayfly/runtime/send_packer.hpp>

namespace {

using namespace mayfly;

struct world {
  std::unique_ptr<buffer_pools> pools;
  std::unique_ptr<arena_pool> arenas;
  bounded_queue<slice> queue{64};
  std::atomic<bool> stop{false};
  std::atomic<int64_t> pushed{0}, popped{0};
  std::thread consumer;

  world() {
    buffer_pools_config b;
    b.standard_slot_size = 256;
    b.standard_capacity = 16;
    b.jumbo_slot_size = 4096;
    b.jumbo_capacity = 4;
    b.prefault = false;
    pools = std::move(*buffer_pools::make(b));
    arena_pool_config a;
    a.block_size = 512;
    a.capacity = 6;
    a.max_arena_bytes = 4096;
    a.prefault = false;
    arenas = std::move(*arena_pool::make(a));
    consumer = std::thread{[this] {
      slice s;
      while (!stop.load()) {
        if (queue.try_pop(s)) {
          s.reset(); // released on another thread
          popped.fetch_add(1);
        } else {
          std::this_thread::yield();
        }
      }
    }};
  }

  ~world() {
    stop.store(true);
    consumer.join();
  }
};

world& the_world() {
  static world w; // one consumer thread for the whole fuzzing session
  return w;
}

void check(bool ok) {
  if (!ok)
    std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto& w = the_world();
  auto heap_before = heap_blocks_live();
  {
    slice live[8];
    mutable_buffer writable;
    std::unique_ptr<arena> mem;
    send_packer packer{*w.pools};
    slice queued[4]; // replies waiting for the kernel
    size_t queued_n = 0;
    for (size_t i = 0; i < size; ++i) {
      uint8_t op = data[i] >> 4, arg = data[i] & 0x0f;
      auto& s = live[arg & 7];
      switch (op) {
        case 0: { // acquire a buffer of a size class chosen by arg
          size_t n = arg < 8 ? 100 : arg < 14 ? 3000 : 9000;
          auto b = w.pools->acquire(n);
          if (b)
            writable = std::move(*b);
          break;
        }
        case 1: // write and split off a frozen part
          if (writable && writable.capacity() > 0) {
            size_t n = std::min<size_t>(arg * 7, writable.capacity());
            std::memset(writable.data(), 'a' + arg, n);
            s = writable.split_to(n);
          }
          break;
        case 2: // freeze the rest
          if (writable)
            s = std::move(writable).freeze(std::min<size_t>(arg, writable.capacity()));
          break;
        case 3: // copy
          live[(arg + 1) & 7] = s;
          break;
        case 4: // sub-slice
          if (s.size() > 1)
            s = s.sub(arg % s.size(), s.size());
          break;
        case 5: // slice_ref of the middle
          if (s.size() > 2) {
            auto v = s.view();
            s = s.slice_ref(v.substr(1, v.size() - 2));
          }
          break;
        case 6: // detach
          s = s.detach();
          check(!s.has_owner() || !s.pooled());
          break;
        case 7: // forward to the consumer thread
          if (s.has_owner() && w.queue.try_push(s))
            w.pushed.fetch_add(1);
          break;
        case 8: // drop
          s.reset();
          break;
        case 9: // arena: lease or allocate
          if (!mem)
            mem = std::make_unique<arena>(*w.arenas);
          else if (mem->leased())
            mem->try_allocate(static_cast<size_t>(arg) * 97 + 1, size_t{1} << (arg % 7));
          break;
        case 10: // a slice kept in the arena: released at reset
          if (mem && mem->leased() && s.has_owner()) {
            try {
              mem->make<slice>(s);
            } catch (const std::bad_alloc&) {
            }
          }
          break;
        case 11:
          if (mem)
            mem->reset();
          break;
        case 12:
          mem.reset();
          break;
        case 13: // queue a reply (copy or zero-copy), then send it
          if (queued_n == 4)
            break;
          if (arg & 1)
            queued[queued_n++] = packer.pack(s.view());
          else if (s.has_owner())
            queued[queued_n++] = s;
          break;
        case 14: { // the kernel took the oldest ones
          size_t taken = std::min<size_t>(queued_n, arg % 5);
          if (taken == 0)
            break;
          for (size_t k = 0; k < queued_n; ++k)
            queued[k] = k + taken < queued_n ? std::move(queued[k + taken])
                                             : slice{};
          queued_n -= taken;
          break;
        }
        default: // split
          if (s.size() > 1)
            live[(arg + 3) & 7] = s.split_to(s.size() / 2);
          break;
      }
    }
  }
  // Everything this input made is gone, except what the consumer still
  // holds: wait for it (bounded), then every balance must be zero.
  for (int spin = 0; w.popped.load() != w.pushed.load() && spin < 10'000'000; ++spin)
    std::this_thread::yield();
  check(w.popped.load() == w.pushed.load());
  check(w.pools->outstanding() == 0);
  check(slice::live_count() == 0);
  check(w.arenas->leases_out() == 0 && w.arenas->blocks_in_use() == 0);
  check(heap_blocks_live() == heap_before);
  return 0;
}
