// memory-demo: the memory layer on its own, without actors or sockets.
//
// Builds a pool set and an arena pool, "receives" a few datagrams into pool
// binaries, parses them in an arena, keeps slices of names past the arena's
// reset (they pin their datagrams), detaches one, packs replies with the send
// side's packer, and prints the runtime statistics as JSON before and after
// everything is released. Run it with no arguments.

#include <cstdio>
#include <cstring>
#include <memory_resource>
#include <string_view>
#include <vector>

#include <mayfly/runtime/arena.hpp>
#include <mayfly/runtime/buffer_pool.hpp>
#include <mayfly/runtime/config.hpp>
#include <mayfly/runtime/stats_registry.hpp>
#include <mayfly/runtime/send_packer.hpp>

namespace {

// Splits "name:value" lines into the arena; returns views into the datagram.
std::pmr::vector<std::string_view> names_of(const mayfly::slice& dgram,
                                            mayfly::arena& arena) {
  std::pmr::vector<std::string_view> names{&arena};
  auto text = dgram.view();
  while (!text.empty()) {
    auto line = text.substr(0, text.find('\n'));
    text.remove_prefix(std::min(text.size(), line.size() + 1));
    names.push_back(line.substr(0, line.find(':')));
  }
  return names;
}

} // namespace

int main() {
  mayfly::memory_config cfg;
  cfg.buffers.standard_capacity = 256;
  cfg.buffers.jumbo_capacity = 4;
  cfg.arenas.capacity = 16;
  auto pools = mayfly::buffer_pools::make(cfg.buffers);
  auto arenas = mayfly::arena_pool::make(cfg.arenas);
  if (!pools || !arenas) {
    std::fprintf(stderr, "memory-demo: cannot create pools\n");
    return 1;
  }
  mayfly::stats_registry registry;
  auto r1 = registry.add("/pools", [&] { return (*pools)->stats(); });
  auto r2 = registry.add("/arenas", [&] { return (*arenas)->stats(); });
  auto r3 = registry.add("/slices", [] {
    return nlohmann::json{{"live", mayfly::slice::live_count()},
                          {"viewed_bytes", mayfly::slice::viewed_bytes()}};
  });

  std::vector<mayfly::slice> kept; // what a long-lived actor would hold
  const char* inputs[] = {"cpu.load:3\nmem.free:42", "disk.io:7", "net.rx:1"};
  std::vector<mayfly::slice> replies; // what the network layer would queue
  mayfly::send_packer packer{**pools};
  for (auto* text : inputs) {
    // "Receive": fill a pool buffer, freeze it into an immutable binary.
    auto buf = (*pools)->acquire(std::strlen(text));
    std::memcpy(buf->data(), text, std::strlen(text));
    auto dgram = std::move(*buf).freeze(std::strlen(text));
    // "Handle": temporaries in an arena, thrown away at scope exit.
    mayfly::arena arena{**arenas};
    for (auto name : names_of(dgram, arena))
      kept.push_back(dgram.slice_ref(name)); // zero-copy, pins the datagram
    replies.push_back(packer.pack(dgram.view().substr(0, 4))); // copied once
  }
  kept.back() = kept.back().detach(); // no longer pins its datagram

  std::printf("while slices are held:\n%s\n",
              registry.collect().dump(2).c_str());
  kept.clear();
  replies.clear(); // "sent"
  packer.release();
  std::printf("after release:\n%s\n", registry.collect().dump(2).c_str());
  return (*pools)->outstanding() == 0 && (*arenas)->leases_out() == 0 ? 0 : 1;
}
