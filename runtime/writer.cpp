#include <mayfly/runtime/writer.hpp>

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
    ++large_;
    return std::move(*buf).freeze(n);
  }
  if (!current_ || current_.capacity() < n) {
    // Never split a datagram: start a fresh buffer. The old one stays alive
    // through the slices of the datagrams already in it.
    current_ = pools_->standard().try_acquire();
    if (!current_)
      return {};
    ++buffers_;
  }
  if (n > 0)
    std::memcpy(current_.data(), bytes.data(), n);
  return current_.split_to(n);
}

datagram_writer::datagram_writer(buffer_pools& pools, uint32_t max_batch)
  : max_batch_(max_batch > 0 ? max_batch : 1),
    queue_(new outgoing_datagram[max_batch_]),
    packer_(pools) {
}

bool datagram_writer::enqueue(const udp_address& to, slice payload) noexcept {
  auto& entry = queue_[tail_++];
  entry.to = to;
  entry.payload = std::move(payload);
  ++stats_.datagrams;
  stats_.bytes += entry.payload.size();
  return true;
}

bool datagram_writer::write(const udp_address& to,
                            std::string_view bytes) noexcept {
  if (full()) {
    ++stats_.batch_full;
    return false;
  }
  auto packed = packer_.pack(bytes);
  stats_.buffers = packer_.buffers();
  stats_.large = packer_.large();
  if (!packed.has_owner()) {
    ++stats_.no_buffer;
    return false;
  }
  ++stats_.copied;
  return enqueue(to, std::move(packed));
}

bool datagram_writer::write(const udp_address& to, slice payload) noexcept {
  if (full()) {
    ++stats_.batch_full;
    return false;
  }
  ++stats_.zero_copy;
  return enqueue(to, std::move(payload));
}

size_t datagram_writer::fill(mmsghdr* msgs, iovec* iovs,
                             size_t max) const noexcept {
  size_t n = std::min<size_t>(max, pending());
  for (size_t i = 0; i < n; ++i) {
    auto& entry = queue_[head_ + i];
    iovs[i].iov_base = const_cast<std::byte*>(entry.payload.data());
    iovs[i].iov_len = entry.payload.size();
    auto& hdr = msgs[i].msg_hdr;
    std::memset(&hdr, 0, sizeof(hdr));
    hdr.msg_name = const_cast<sockaddr*>(entry.to.sockaddr_ptr());
    hdr.msg_namelen = entry.to.size();
    hdr.msg_iov = &iovs[i];
    hdr.msg_iovlen = 1;
    msgs[i].msg_len = 0;
  }
  return n;
}

void datagram_writer::consume(size_t n) noexcept {
  n = std::min<size_t>(n, pending());
  for (size_t i = 0; i < n; ++i)
    queue_[head_ + i].payload.reset();
  head_ += static_cast<uint32_t>(n);
  if (head_ == tail_) {
    head_ = 0;
    tail_ = 0;
  }
}

void datagram_writer::clear() noexcept {
  consume(pending());
  packer_.release();
}

} // namespace mayfly
