#pragma once

// Helpers for the DNS example's tests: an arena pool, query construction,
// and a decoder that turns a response into plain strings (test code may
// use the heap freely).

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "examples/dns/message.hpp"
#include "examples/dns/responder.hpp"
#include "examples/dns/zone.hpp"
#include <mayfly/runtime/arena.hpp>

namespace dns::test {

/// A small arena pool; `check_returned()` at the end of a test.
inline std::unique_ptr<mayfly::arena_pool> make_arena_pool() {
  mayfly::arena_pool_config cfg;
  cfg.block_size = 16384;
  cfg.capacity = 16;
  cfg.huge_pages = false;
  cfg.prefault = false;
  auto pool = mayfly::arena_pool::make(cfg);
  EXPECT_TRUE(pool);
  return std::move(*pool);
}

/// The bytes of a query (see dns::write_query).
inline std::string make_query(std::string_view name, uint16_t qtype,
                              uint16_t id = 0x1234, uint16_t flags = flag::rd,
                              uint16_t edns_size = 0) {
  unsigned char buf[600];
  size_t n = write_query(buf, sizeof(buf), name, qtype, id, flags, edns_size);
  EXPECT_GT(n, 0u) << name;
  return std::string(reinterpret_cast<char*>(buf), n);
}

/// Presentation form of a wire name.
inline std::string text_of(std::string_view wire) {
  char buf[4 * kMaxName + 2];
  return std::string(buf, to_text(wire, buf, sizeof(buf)));
}

/// One record of a decoded message.
struct decoded_rr {
  section where;
  size_t offset; // of the owner name
  std::string owner;
  uint16_t type;
  uint16_t klass;
  uint32_t ttl;
  std::string rdata; // presentation form
};

/// A decoded message.
struct decoded {
  bool ok = false;
  std::string error;
  header hdr;
  std::vector<decoded_rr> rrs;

  uint8_t rcode() const {
    return hdr.rcode();
  }

  bool has(uint16_t f) const {
    return (hdr.flags & f) != 0;
  }

  std::vector<decoded_rr> in(section s) const {
    std::vector<decoded_rr> out;
    for (auto& r : rrs)
      if (r.where == s)
        out.push_back(r);
    return out;
  }
};

inline std::string rdata_text(std::string_view msg, const rr_view& rr) {
  auto* m = reinterpret_cast<const unsigned char*>(msg.data());
  auto name_at = [&](size_t& p) {
    char buf[kMaxName];
    size_t len = 0, next = 0;
    if (read_name(msg, p, buf, len, next) != wire_error::none)
      return std::string{"<bad name>"};
    p = next;
    return text_of({buf, len});
  };
  size_t p = rr.rdata_offset;
  char ip[INET6_ADDRSTRLEN];
  switch (rr.type) {
    case type::a:
      inet_ntop(AF_INET, m + p, ip, sizeof(ip));
      return ip;
    case type::aaaa:
      inet_ntop(AF_INET6, m + p, ip, sizeof(ip));
      return ip;
    case type::ns:
    case type::cname:
      return name_at(p);
    case type::mx: {
      auto pref = std::to_string(get16(m + p));
      p += 2;
      return pref + " " + name_at(p);
    }
    case type::soa: {
      auto mname = name_at(p);
      auto rname = name_at(p);
      std::string s = mname + " " + rname;
      for (int i = 0; i < 5; ++i)
        s += " " + std::to_string(get32(m + p + 4 * i));
      return s;
    }
    case type::txt: {
      std::string s;
      size_t end = p + rr.rdlength;
      while (p < end) {
        size_t len = m[p];
        if (!s.empty())
          s += " ";
        s += "\"" + std::string(msg.substr(p + 1, len)) + "\"";
        p += 1 + len;
      }
      return s;
    }
    default:
      return "<" + std::to_string(rr.rdlength) + " bytes>";
  }
}

/// Decodes `msg` (which must pass check_message).
inline decoded decode(std::string_view msg) {
  decoded d;
  auto err = check_message(msg);
  if (err != wire_error::none) {
    d.error = to_string(err);
    return d;
  }
  message_reader rd{msg};
  d.hdr = rd.hdr();
  rr_view rr;
  while (rd.next(rr)) {
    decoded_rr out{rr.where, rr.offset, text_of(rr.owner()), rr.type, rr.klass,
                   rr.ttl,   ""};
    if (rr.where != section::question)
      out.rdata = rdata_text(msg, rr);
    d.rrs.push_back(std::move(out));
  }
  d.ok = true;
  return d;
}

} // namespace dns::test
