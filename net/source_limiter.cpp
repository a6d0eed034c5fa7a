#include <mayfly/net/internal/source_limiter.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include <mayfly/runtime/assert.hpp>

namespace mayfly::detail {

namespace {

constexpr int64_t kSecondNs = 1'000'000'000;

// The first `bits` (0..64) bits of a 64-bit word set.
constexpr uint64_t leading_bits(unsigned bits) noexcept {
  return bits == 0 ? 0 : ~uint64_t{0} << (64 - bits);
}

// splitmix64's finalizer: every input bit reaches every output bit.
constexpr uint64_t mix(uint64_t x) noexcept {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

uint64_t load_be64(const unsigned char* p) noexcept {
  uint64_t x = 0;
  for (int i = 0; i < 8; ++i)
    x = (x << 8) | p[i];
  return x;
}

} // namespace

source_limiter::source_limiter(const source_limit_options& opts,
                               uint64_t seed)
  : interval_ns_((kSecondNs + opts.rate / 2) / opts.rate),
    tolerance_ns_((int64_t{opts.effective_burst()} - 1) * interval_ns_),
    v4_mask_(static_cast<uint32_t>(leading_bits(opts.ipv4_prefix) >> 32)),
    v6_mask_hi_(leading_bits(opts.ipv6_prefix < 64 ? opts.ipv6_prefix : 64)),
    v6_mask_lo_(leading_bits(opts.ipv6_prefix > 64 ? opts.ipv6_prefix - 64
                                                   : 0)),
    seed_(seed),
    sets_(1) {
  MAYFLY_ASSERT(opts.enabled() && opts.check().empty());
  while (sets_ * ways < opts.table_size)
    sets_ *= 2;
  table_ = std::make_unique<bucket[]>(sets_ * ways);
}

source_limiter::key
source_limiter::key_of(const udp_address& peer) const noexcept {
  // IPv4 as its IPv4-mapped IPv6 form, so that a dual-stack socket's
  // ::ffff:a.b.c.d and a.b.c.d share a bucket.
  auto v4_key = [this](uint32_t host_order) {
    return key{0, 0xffff00000000ULL | (host_order & v4_mask_)};
  };
  if (peer.is_v6()) {
    const auto* sa = reinterpret_cast<const sockaddr_in6*>(peer.sockaddr_ptr());
    const auto* bytes = sa->sin6_addr.s6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&sa->sin6_addr)) {
      uint32_t v4;
      std::memcpy(&v4, bytes + 12, 4);
      return v4_key(ntohl(v4));
    }
    return key{load_be64(bytes) & v6_mask_hi_,
               load_be64(bytes + 8) & v6_mask_lo_};
  }
  if (peer.family() == AF_INET) {
    const auto* sa = reinterpret_cast<const sockaddr_in*>(peer.sockaddr_ptr());
    return v4_key(ntohl(sa->sin_addr.s_addr));
  }
  return key{0, 0}; // unspecified: one shared bucket
}

size_t source_limiter::set_index(key k) const noexcept {
  return static_cast<size_t>(mix(mix(k.hi ^ seed_) ^ k.lo)) & (sets_ - 1);
}

size_t source_limiter::set_of(const udp_address& peer) const noexcept {
  return set_index(key_of(peer));
}

bool source_limiter::charge(bucket& b, int64_t tat, int64_t now) noexcept {
  auto base = tat > now ? tat : now;
  if (base - now > tolerance_ns_) {
    if (!b.limited.load(std::memory_order_relaxed))
      b.limited.store(true, std::memory_order_relaxed);
    return false; // a refusal costs nothing: the bucket stays as it was
  }
  b.tat.store(base + interval_ns_, std::memory_order_relaxed);
  if (b.limited.load(std::memory_order_relaxed))
    b.limited.store(false, std::memory_order_relaxed);
  return true;
}

source_limiter::decision
source_limiter::admit(const udp_address& peer, int64_t now) noexcept {
  auto k = key_of(peer);
  auto* set = &table_[set_index(k) * ways];
  bucket* free = nullptr;
  bucket* least = nullptr; // the bucket in use that is full soonest
  int64_t least_tat = 0;
  for (size_t i = 0; i < ways; ++i) {
    auto& b = set[i];
    auto tat = b.tat.load(std::memory_order_relaxed);
    // (An unused slot has key 0 and tat 0: a source whose key is 0 finds
    // a full bucket there, which is right.)
    if (b.k.hi == k.hi && b.k.lo == k.lo)
      return {charge(b, tat, now), false};
    if (tat <= now) {
      if (free == nullptr)
        free = &b;
    } else if (least == nullptr || tat < least_tat) {
      least = &b;
      least_tat = tat;
    }
  }
  // A new key: a full bucket in a free slot, else the least debt of the
  // set, inherited (file comment, "Eviction rule").
  auto& b = free != nullptr ? *free : *least;
  auto start = free != nullptr ? now : least_tat;
  b.k = k;
  b.limited.store(false, std::memory_order_relaxed);
  return {charge(b, start, now), free == nullptr};
}

int64_t source_limiter::limited(int64_t now) const noexcept {
  int64_t n = 0;
  for (size_t i = 0; i < capacity(); ++i)
    n += table_[i].limited.load(std::memory_order_relaxed)
         && table_[i].tat.load(std::memory_order_relaxed) > now;
  return n;
}

} // namespace mayfly::detail
