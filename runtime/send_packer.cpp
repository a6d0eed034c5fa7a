#include <mayfly/runtime/send_packer.hpp>

#include <cstring>

namespace mayfly {

slice send_packer::pack(std::string_view bytes) noexcept {
  auto n = bytes.size();
  if (n > pools_->standard().slot_size()) {
    // Too large to pack: a buffer of its own from the class that fits.
    auto buf = pools_->acquire(n);
    if (!buf)
      return {};
    std::memcpy(buf->data(), bytes.data(), n);
    bump(large_, 1);
    return std::move(*buf).freeze(n);
  }
  if (!current_ || current_.capacity() < n) {
    // Never split a datagram: start a fresh buffer. The old one stays alive
    // through the slices of the datagrams already in it.
    current_ = pools_->standard().try_acquire();
    if (!current_)
      return {};
    bump(buffers_, 1);
  }
  if (n > 0)
    std::memcpy(current_.data(), bytes.data(), n);
  bump(bytes_, n);
  return current_.split_to(n);
}

} // namespace mayfly
