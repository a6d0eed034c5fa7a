#include "examples/dns/message.hpp"

#include <algorithm>
#include <cstring>

namespace dns {

namespace {

// A legitimate name has at most 127 labels, hence needs at most 127 pointers.
constexpr int kMaxPointers = 127;

const unsigned char* bytes(std::string_view s) noexcept {
  return reinterpret_cast<const unsigned char*>(s.data());
}

} // namespace

const char* to_string(wire_error x) noexcept {
  switch (x) {
    case wire_error::none:
      return "no error";
    case wire_error::truncated:
      return "truncated message";
    case wire_error::bad_pointer:
      return "compression pointer that does not point backwards";
    case wire_error::bad_label:
      return "label longer than 63 bytes (reserved label type)";
    case wire_error::name_too_long:
      return "name longer than 255 bytes";
    case wire_error::bad_count:
      return "QDCOUNT is not 1";
    case wire_error::bad_opt:
      return "malformed or misplaced OPT record";
    case wire_error::bad_rdata:
      return "RDATA does not match its type";
    case wire_error::trailing_bytes:
      return "bytes after the last record";
  }
  return "?";
}

// -- reading ------------------------------------------------------------------

wire_error read_name(std::string_view msg, size_t pos, char* out,
                     size_t& out_len, size_t& next, bool lower) noexcept {
  const auto* m = bytes(msg);
  const size_t n = msg.size();
  size_t p = pos;
  // Start of the label sequence being read: a pointer must point before it.
  // Every jump therefore lowers it, which is what makes loops impossible.
  size_t seg_start = pos;
  size_t len = 0;
  bool jumped = false;
  int hops = 0;
  for (;;) {
    if (p >= n)
      return wire_error::truncated;
    unsigned char b = m[p];
    if ((b & 0xC0) == 0xC0) {
      if (p + 1 >= n)
        return wire_error::truncated;
      size_t target = (size_t{b & 0x3Fu} << 8) | m[p + 1];
      if (!jumped)
        next = p + 2;
      jumped = true;
      if (target >= seg_start || ++hops > kMaxPointers)
        return wire_error::bad_pointer;
      p = seg_start = target;
      continue;
    }
    if ((b & 0xC0) != 0)
      return wire_error::bad_label;
    if (b == 0) {
      out[len++] = 0; // len <= 254 here (checked below)
      if (!jumped)
        next = p + 1;
      out_len = len;
      return wire_error::none;
    }
    if (p + 1 + b > n)
      return wire_error::truncated;
    // This label plus the root label must fit in 255 bytes.
    if (len + 1 + b + 1 > kMaxName)
      return wire_error::name_too_long;
    out[len++] = static_cast<char>(b);
    for (size_t i = 0; i < b; ++i) {
      char c = static_cast<char>(m[p + 1 + i]);
      out[len++] = lower ? ascii_lower(c) : c;
    }
    p += 1 + b;
  }
}

bool read_header(std::string_view msg, header& h) noexcept {
  if (msg.size() < kHeaderSize)
    return false;
  const auto* m = bytes(msg);
  h.id = get16(m);
  h.flags = get16(m + 2);
  h.qdcount = get16(m + 4);
  h.ancount = get16(m + 6);
  h.nscount = get16(m + 8);
  h.arcount = get16(m + 10);
  return true;
}

message_reader::message_reader(std::string_view msg) noexcept : msg_(msg) {
  if (!read_header(msg, hdr_)) {
    error_ = wire_error::truncated;
    pos_ = msg.size();
    return;
  }
  left_[0] = hdr_.qdcount;
  left_[1] = hdr_.ancount;
  left_[2] = hdr_.nscount;
  left_[3] = hdr_.arcount;
}

bool message_reader::next(rr_view& rr) noexcept {
  if (error_ != wire_error::none)
    return false;
  size_t s = 0;
  while (s < 4 && left_[s] == 0)
    ++s;
  if (s == 4)
    return false;
  rr.where = static_cast<section>(s);
  rr.offset = pos_;
  size_t after = 0;
  if (auto err = read_name(msg_, pos_, rr.name, rr.name_len, after);
      err != wire_error::none) {
    error_ = err;
    return false;
  }
  const auto* m = bytes(msg_);
  size_t fixed = s == 0 ? 4 : 10;
  if (msg_.size() - after < fixed) {
    error_ = wire_error::truncated;
    return false;
  }
  rr.type = get16(m + after);
  rr.klass = get16(m + after + 2);
  rr.ttl = 0;
  rr.rdlength = 0;
  rr.rdata_offset = after + fixed;
  if (s != 0) {
    rr.ttl = get32(m + after + 4);
    rr.rdlength = get16(m + after + 8);
    if (msg_.size() - rr.rdata_offset < rr.rdlength) {
      error_ = wire_error::truncated;
      return false;
    }
  }
  pos_ = rr.rdata_offset + rr.rdlength;
  --left_[s];
  return true;
}

namespace {

// Validates the option TLVs of an OPT record's RDATA.
bool opt_options_ok(std::string_view msg, size_t off, size_t len) noexcept {
  const auto* m = bytes(msg);
  size_t p = off, end = off + len;
  while (p < end) {
    if (end - p < 4)
      return false;
    size_t olen = get16(m + p + 2);
    if (end - p - 4 < olen)
      return false;
    p += 4 + olen;
  }
  return true;
}

// A (possibly compressed) name inside RDATA that must end by `end`.
bool rdata_name(std::string_view msg, size_t& p, size_t end) noexcept {
  char buf[kMaxName];
  size_t len = 0, next = 0;
  if (read_name(msg, p, buf, len, next) != wire_error::none || next > end)
    return false;
  p = next;
  return true;
}

bool rdata_ok(std::string_view msg, const rr_view& rr) noexcept {
  const auto* m = bytes(msg);
  size_t p = rr.rdata_offset;
  size_t end = p + rr.rdlength;
  switch (rr.type) {
    case type::a:
      return rr.rdlength == 4;
    case type::aaaa:
      return rr.rdlength == 16;
    case type::ns:
    case type::cname:
      return rdata_name(msg, p, end) && p == end;
    case type::mx:
      p += 2;
      return rr.rdlength > 2 && rdata_name(msg, p, end) && p == end;
    case type::soa:
      return rdata_name(msg, p, end) && rdata_name(msg, p, end)
             && end - p == 20;
    case type::txt:
      if (rr.rdlength == 0)
        return false;
      while (p < end) {
        p += 1 + m[p];
        if (p > end)
          return false;
      }
      return true;
    case type::opt:
      return opt_options_ok(msg, p, rr.rdlength);
    default:
      return true;
  }
}

} // namespace

wire_error check_message(std::string_view msg) noexcept {
  message_reader rd{msg};
  rr_view rr;
  bool opt_seen = false;
  while (rd.next(rr)) {
    if (rr.where == section::question)
      continue;
    if (rr.type == type::opt) {
      if (rr.where != section::additional || opt_seen || rr.name_len != 1)
        return wire_error::bad_opt;
      opt_seen = true;
    }
    if (!rdata_ok(msg, rr))
      return wire_error::bad_rdata;
  }
  if (rd.error() != wire_error::none)
    return rd.error();
  if (!rd.at_end())
    return wire_error::trailing_bytes;
  return wire_error::none;
}

// -- queries ------------------------------------------------------------------

parse_status parse_query(std::string_view msg, mayfly::arena& arena, query& q,
                         wire_error* why) noexcept {
  auto malformed = [why](wire_error e) {
    if (why != nullptr)
      *why = e;
    return parse_status::malformed;
  };
  q = query{};
  if (!read_header(msg, q.hdr))
    return parse_status::too_short;
  if (q.hdr.qdcount != 1)
    return malformed(wire_error::bad_count);
  message_reader rd{msg};
  rr_view rr;
  if (!rd.next(rr))
    return malformed(rd.error());
  auto* names = static_cast<char*>(arena.try_allocate(2 * rr.name_len, 1));
  if (names == nullptr)
    return parse_status::no_memory;
  std::memcpy(names, rr.name, rr.name_len);
  for (size_t i = 0; i < rr.name_len; ++i)
    names[rr.name_len + i] = ascii_lower(rr.name[i]);
  q.qname = {names, rr.name_len};
  q.qname_key = {names + rr.name_len, rr.name_len};
  q.qtype = rr.type;
  q.qclass = rr.klass;
  while (rd.next(rr)) {
    if (rr.type != type::opt)
      continue; // answer/authority records of a query carry nothing for us
    if (rr.where != section::additional || q.edns || rr.name_len != 1
        || !opt_options_ok(msg, rr.rdata_offset, rr.rdlength))
      return malformed(wire_error::bad_opt);
    q.edns = true;
    q.udp_size = rr.klass;
    q.edns_version = static_cast<uint8_t>(rr.ttl >> 16);
    q.dnssec_ok = (rr.ttl & 0x8000) != 0;
  }
  if (rd.error() != wire_error::none)
    return malformed(rd.error());
  if (!rd.at_end())
    return malformed(wire_error::trailing_bytes);
  return parse_status::ok;
}

// -- writing ------------------------------------------------------------------

message_writer::message_writer(unsigned char* buf, size_t limit) noexcept
  : buf_(buf), capacity_(limit), limit_(limit) {
  MAYFLY_ASSERT(limit >= kHeaderSize);
  std::memset(buf_, 0, kHeaderSize);
}

void message_writer::set_limit(size_t limit) noexcept {
  limit_ = std::clamp(limit, size_, capacity_);
}

bool message_writer::put(const void* p, size_t n) noexcept {
  if (limit_ - size_ < n)
    return false;
  if (n > 0)
    std::memcpy(buf_ + size_, p, n);
  size_ += n;
  return true;
}

bool message_writer::put16(uint16_t v) noexcept {
  unsigned char b[2];
  dns::put16(b, v);
  return put(b, 2);
}

bool message_writer::put32(uint32_t v) noexcept {
  unsigned char b[4];
  dns::put32(b, v);
  return put(b, 4);
}

// Whether the name written at `offset` (following our own pointers, which
// all point backwards) equals `suffix`, ignoring case.
bool message_writer::suffix_at(size_t offset,
                               std::string_view suffix) const noexcept {
  size_t p = offset, i = 0;
  int hops = 0;
  for (;;) {
    if (p >= size_ || i >= suffix.size())
      return false;
    unsigned char b = buf_[p];
    if ((b & 0xC0) == 0xC0) {
      if (p + 1 >= size_ || ++hops > kMaxPointers)
        return false;
      p = (size_t{b & 0x3Fu} << 8) | buf_[p + 1];
      continue;
    }
    if (b != static_cast<unsigned char>(suffix[i]))
      return false;
    if (b == 0)
      return true;
    if (p + 1 + b > size_ || i + 1 + b > suffix.size())
      return false;
    for (size_t k = 1; k <= b; ++k)
      if (ascii_lower(static_cast<char>(buf_[p + k]))
          != ascii_lower(suffix[i + k]))
        return false;
    p += 1 + b;
    i += 1 + b;
  }
}

bool message_writer::write_name(std::string_view name) noexcept {
  // Find the longest suffix already in the message.
  size_t i = 0;
  bool found = false;
  size_t target = 0;
  while (i < name.size() && name[i] != 0) {
    for (size_t t = 0; t < ntargets_ && !found; ++t)
      if (suffix_at(targets_[t], name.substr(i))) {
        found = true;
        target = targets_[t];
      }
    if (found)
      break;
    i += 1 + static_cast<unsigned char>(name[i]);
  }
  if (i > name.size())
    return false; // malformed name; never from the zone or the parser
  size_t need = i + (found ? 2 : 1);
  if (limit_ - size_ < need)
    return false;
  // Remember where each label we write starts, for later names.
  for (size_t j = 0; j < i; j += 1 + static_cast<unsigned char>(name[j]))
    if (size_ + j < 0x4000 && ntargets_ < kMaxTargets)
      targets_[ntargets_++] = static_cast<uint16_t>(size_ + j);
  put(name.data(), i);
  if (found)
    return put16(static_cast<uint16_t>(0xC000 | target));
  unsigned char root = 0;
  return put(&root, 1);
}

bool message_writer::add_question(std::string_view name, uint16_t qtype,
                                  uint16_t qclass) noexcept {
  auto m = mark();
  if (write_name(name) && put16(qtype) && put16(qclass)) {
    ++counts_[0];
    return true;
  }
  rollback(m);
  return false;
}

bool message_writer::add_record(section where, std::string_view owner,
                                const record& r) noexcept {
  return add_record(where, owner, r, r.ttl);
}

bool message_writer::add_record(section where, std::string_view owner,
                                const record& r, uint32_t ttl) noexcept {
  auto m = mark();
  bool ok = write_name(owner) && put16(r.type) && put16(klass::in) && put32(ttl)
            && put16(0);
  size_t rdstart = size_;
  if (ok) {
    switch (r.type) {
      case type::ns:
      case type::cname:
        ok = write_name(r.name1);
        break;
      case type::mx:
        ok = put(r.fixed.data(), r.fixed.size()) && write_name(r.name1);
        break;
      case type::soa:
        ok = write_name(r.name1) && write_name(r.name2)
             && put(r.fixed.data(), r.fixed.size());
        break;
      default:
        ok = put(r.fixed.data(), r.fixed.size());
    }
  }
  if (ok && size_ - rdstart <= 0xFFFF) {
    dns::put16(buf_ + rdstart - 2, static_cast<uint16_t>(size_ - rdstart));
    ++counts_[static_cast<size_t>(where)];
    return true;
  }
  rollback(m);
  return false;
}

bool message_writer::add_opt(uint16_t udp_size, uint8_t ext_rcode,
                             bool dnssec_ok) noexcept {
  auto m = mark();
  unsigned char root = 0;
  uint32_t ttl = (uint32_t{ext_rcode} << 24) | (dnssec_ok ? 0x8000u : 0u);
  if (put(&root, 1) && put16(type::opt) && put16(udp_size) && put32(ttl)
      && put16(0)) {
    ++counts_[3];
    return true;
  }
  rollback(m);
  return false;
}

message_writer::mark_t message_writer::mark() const noexcept {
  return {size_, ntargets_, {counts_[0], counts_[1], counts_[2], counts_[3]}};
}

void message_writer::rollback(const mark_t& m) noexcept {
  size_ = m.size;
  ntargets_ = m.targets;
  std::copy(m.counts, m.counts + 4, counts_);
}

std::string_view message_writer::finish() noexcept {
  dns::put16(buf_, id_);
  dns::put16(buf_ + 2, flags_);
  for (size_t i = 0; i < 4; ++i)
    dns::put16(buf_ + 4 + 2 * i, counts_[i]);
  return {reinterpret_cast<const char*>(buf_), size_};
}

// -- client side --------------------------------------------------------------

size_t name_from_text(std::string_view text, char* out) noexcept {
  if (text.empty() || text == ".") {
    out[0] = 0;
    return 1;
  }
  size_t len = 0;      // bytes written
  size_t label_at = 0; // where the current label's length byte goes
  size_t label_len = 0;
  len = 1; // room for the first length byte
  auto close = [&]() -> bool {
    if (label_len == 0 || label_len > kMaxLabel)
      return false;
    out[label_at] = static_cast<char>(label_len);
    label_at = len;
    label_len = 0;
    if (len + 1 > kMaxName)
      return false;
    ++len; // the next length byte (or the root)
    return true;
  };
  for (size_t i = 0; i < text.size();) {
    char c = text[i];
    if (c == '.') {
      if (!close())
        return 0;
      ++i;
      continue;
    }
    if (c == '\\') {
      if (i + 1 >= text.size())
        return 0;
      if (text[i + 1] >= '0' && text[i + 1] <= '9') {
        if (i + 3 >= text.size())
          return 0;
        int v = 0;
        for (size_t k = 1; k <= 3; ++k) {
          if (text[i + k] < '0' || text[i + k] > '9')
            return 0;
          v = v * 10 + (text[i + k] - '0');
        }
        if (v > 255)
          return 0;
        c = static_cast<char>(v);
        i += 4;
      } else {
        c = text[i + 1];
        i += 2;
      }
    } else {
      ++i;
    }
    if (len >= kMaxName || label_len >= kMaxLabel)
      return 0;
    out[len++] = c;
    ++label_len;
  }
  if (label_len > 0 && !close())
    return 0;
  // `len - 1` is the pending length byte: make it the root label.
  out[len - 1] = 0;
  return len;
}

size_t write_query(unsigned char* buf, size_t cap, std::string_view name,
                   uint16_t qtype, uint16_t id, uint16_t flags,
                   uint16_t edns_size) noexcept {
  char wire[kMaxName];
  size_t n = name_from_text(name, wire);
  if (n == 0 || cap < kHeaderSize)
    return 0;
  message_writer w{buf, cap};
  w.set_header(id, flags);
  if (!w.add_question({wire, n}, qtype, klass::in))
    return 0;
  if (edns_size > 0 && !w.add_opt(edns_size, 0, false))
    return 0;
  return w.finish().size();
}

} // namespace dns
