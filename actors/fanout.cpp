#include <mayfly/actors/fanout.hpp>

#include <random>

#include <mayfly/actors/handler.hpp>

namespace mayfly {

uint64_t key_hash_seed() noexcept {
  static const uint64_t seed = [] {
    std::random_device rd;
    return (uint64_t{rd()} << 32) ^ rd();
  }();
  return seed;
}

fanout::fanout(handler_context& ctx,
               const std::vector<caf::actor>& destinations, const slice& source)
  : fanout(ctx.arena(), destinations, source) {
  policy_ = &detail::detach_policy_of(ctx.runtime());
}

key_table::key_table(size_t max_keys) : max_keys_(max_keys) {
}

size_t key_table::slot_of(std::string_view key,
                          uint64_t hash) const noexcept {
  auto mask = capacity_ - 1;
  for (auto i = static_cast<size_t>(hash) & mask;; i = (i + 1) & mask) {
    auto& e = entries_[i];
    if (e.key == nullptr
        || (e.hash == hash && e.length == key.size()
            && std::memcmp(e.key, key.data(), key.size()) == 0))
      return i;
  }
}

const int64_t* key_table::find(std::string_view key,
                               uint64_t hash) const noexcept {
  if (size_ == 0)
    return nullptr;
  auto& e = entries_[slot_of(key, hash)];
  return e.key != nullptr ? &e.total : nullptr;
}

key_table::outcome key_table::add(std::string_view key, uint64_t hash,
                                  int64_t value) {
  if (capacity_ > 0) {
    auto& e = entries_[slot_of(key, hash)];
    if (e.key != nullptr) {
      e.total = static_cast<int64_t>(static_cast<uint64_t>(e.total)
                                     + static_cast<uint64_t>(value));
      return outcome::updated;
    }
  }
  if (size_ >= max_keys_) {
    ++refused_;
    return outcome::refused;
  }
  if ((size_ + 1) * 2 > capacity_)
    grow();
  auto& e = entries_[slot_of(key, hash)];
  e = {hash, store(key), static_cast<uint32_t>(key.size()), value};
  ++size_;
  return outcome::inserted;
}

const char* key_table::store(std::string_view key) {
  // A zero-length key still needs a non-null address (nullptr = empty).
  auto n = std::max<size_t>(key.size(), 1);
  if (n > kChunkBytes / 4) { // a long key gets a chunk of its own
    chunks_.emplace_back(new char[n]);
    std::memcpy(chunks_.back().get(), key.data(), key.size());
    // Keep the current chunk current: swap the new one before it.
    if (chunks_.size() > 1)
      std::swap(chunks_[chunks_.size() - 1], chunks_[chunks_.size() - 2]);
    return chunks_.size() > 1 ? chunks_[chunks_.size() - 2].get()
                              : chunks_.back().get();
  }
  if (chunk_used_ + n > kChunkBytes) {
    chunks_.emplace_back(new char[kChunkBytes]);
    chunk_used_ = 0;
  }
  auto* at = chunks_.back().get() + chunk_used_;
  std::memcpy(at, key.data(), key.size());
  chunk_used_ += n;
  return at;
}

void key_table::grow() {
  auto old = std::move(entries_);
  auto old_capacity = capacity_;
  capacity_ = capacity_ == 0 ? 64 : capacity_ * 2;
  entries_.reset(new entry[capacity_]());
  auto mask = capacity_ - 1;
  for (size_t j = 0; j < old_capacity; ++j) {
    auto& e = old[j];
    if (e.key == nullptr)
      continue;
    auto i = static_cast<size_t>(e.hash) & mask;
    while (entries_[i].key != nullptr)
      i = (i + 1) & mask;
    entries_[i] = e;
  }
}

} // namespace mayfly
