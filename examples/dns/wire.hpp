#pragma once

/// @file
/// DNS wire-format constants and helpers on uncompressed names, shared by the
/// zone parser, the message parser and the responder of the `mayfly-dns`
/// example.
///
/// A *wire name* here is always uncompressed: length-prefixed labels ending
/// with the zero-length root label, at most 255 bytes (RFC 1035 §3.1), held
/// in a `std::string_view` whose bytes are `char`s. Comparisons are
/// ASCII-case-insensitive (RFC 4343); nothing here allocates.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace dns {

// -- limits (RFC 1035 §2.3.4) -------------------------------------------------

inline constexpr size_t kMaxLabel = 63;
inline constexpr size_t kMaxName = 255;
inline constexpr size_t kMaxCharString = 255;
inline constexpr size_t kHeaderSize = 12;
/// Largest UDP response without EDNS (RFC 1035 §4.2.1).
inline constexpr size_t kClassicUdpSize = 512;
/// The UDP payload size this responder advertises in its OPT record (the
/// 2020 DNS flag day value), and the largest response it ever builds: a
/// reply is capped at the smaller of this and the client's EDNS size
/// (RFC 6891 §6.2.5), at 512 bytes without EDNS.
inline constexpr uint16_t kAdvertisedUdpSize = 1232;

// -- types, classes, codes ----------------------------------------------------

namespace type {
inline constexpr uint16_t a = 1;
inline constexpr uint16_t ns = 2;
inline constexpr uint16_t cname = 5;
inline constexpr uint16_t soa = 6;
inline constexpr uint16_t mx = 15;
inline constexpr uint16_t txt = 16;
inline constexpr uint16_t aaaa = 28;
inline constexpr uint16_t opt = 41;
inline constexpr uint16_t tkey = 249;
inline constexpr uint16_t tsig = 250;
inline constexpr uint16_t ixfr = 251;
inline constexpr uint16_t axfr = 252;
inline constexpr uint16_t mailb = 253; // RFC 1035 §3.2.3
inline constexpr uint16_t maila = 254;
inline constexpr uint16_t any = 255;

/// Whether `qtype` is one of the QTYPEs and meta-TYPEs that name no data in
/// a zone and that this responder does not implement (RFC 6895 §3.1): OPT
/// (never a QTYPE), TKEY, TSIG, IXFR, AXFR, MAILB, MAILA. ANY is served.
/// Every other value, known or not (CAA, SRV, TYPE999, TYPE65280, ...), is
/// an ordinary data type (RFC 3597): NODATA or NXDOMAIN, like any type the
/// zone holds no record of.
inline constexpr bool is_unsupported_meta(uint16_t qtype) noexcept {
  return qtype == opt || (qtype >= tkey && qtype < any);
}
} // namespace type

namespace klass {
inline constexpr uint16_t in = 1;
inline constexpr uint16_t any = 255;
} // namespace klass

/// Response codes (RFC 1035 §4.1.1; BADVERS from RFC 6891 needs EDNS).
enum class rcode : uint8_t {
  noerror = 0,
  formerr = 1,
  servfail = 2,
  nxdomain = 3,
  notimp = 4,
  refused = 5,
  badvers = 16,
};

/// "NOERROR", "NXDOMAIN", ...
constexpr const char* to_string(rcode x) noexcept {
  switch (x) {
    case rcode::noerror:
      return "NOERROR";
    case rcode::formerr:
      return "FORMERR";
    case rcode::servfail:
      return "SERVFAIL";
    case rcode::nxdomain:
      return "NXDOMAIN";
    case rcode::notimp:
      return "NOTIMP";
    case rcode::refused:
      return "REFUSED";
    case rcode::badvers:
      return "BADVERS";
  }
  return "?";
}

/// Header flag bits (second 16-bit word of the header).
namespace flag {
inline constexpr uint16_t qr = 0x8000;
inline constexpr uint16_t aa = 0x0400;
inline constexpr uint16_t tc = 0x0200;
inline constexpr uint16_t rd = 0x0100;
inline constexpr uint16_t ra = 0x0080;
inline constexpr uint16_t ad = 0x0020;
inline constexpr uint16_t cd = 0x0010;
} // namespace flag

inline constexpr uint16_t opcode_of(uint16_t flags) noexcept {
  return static_cast<uint16_t>((flags >> 11) & 0xF);
}

// -- byte helpers -------------------------------------------------------------

inline constexpr char ascii_lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

inline uint16_t get16(const unsigned char* p) noexcept {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}

inline uint32_t get32(const unsigned char* p) noexcept {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8)
         | uint32_t{p[3]};
}

inline void put16(unsigned char* p, uint16_t v) noexcept {
  p[0] = static_cast<unsigned char>(v >> 8);
  p[1] = static_cast<unsigned char>(v);
}

inline void put32(unsigned char* p, uint32_t v) noexcept {
  p[0] = static_cast<unsigned char>(v >> 24);
  p[1] = static_cast<unsigned char>(v >> 16);
  p[2] = static_cast<unsigned char>(v >> 8);
  p[3] = static_cast<unsigned char>(v);
}

// -- uncompressed wire names --------------------------------------------------

/// Whether two wire names are equal, ignoring ASCII case. Both must be
/// well-formed. O(length), no allocation.
inline bool names_equal(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i]))
      return false;
  return true;
}

/// Whether `name` equals `apex` or lies below it (on a label boundary),
/// ignoring case. Both must be well-formed wire names.
inline bool is_at_or_below(std::string_view name,
                           std::string_view apex) noexcept {
  // Walk labels of `name` until the remaining suffix has apex's length;
  // comparing only at label starts keeps "xexample." from matching
  // "example.".
  size_t pos = 0;
  while (pos < name.size()) {
    if (name.size() - pos == apex.size())
      return names_equal(name.substr(pos), apex);
    if (name.size() - pos < apex.size())
      return false;
    pos += 1 + static_cast<unsigned char>(name[pos]);
  }
  return false;
}

/// Number of labels before the root label.
inline size_t label_count(std::string_view name) noexcept {
  size_t n = 0;
  for (size_t pos = 0;
       pos < name.size() && static_cast<unsigned char>(name[pos]) != 0;
       pos += 1 + static_cast<unsigned char>(name[pos]))
    ++n;
  return n;
}

/// Writes `name` in presentation form ("www.example.test.") into `out`
/// (at most `cap` bytes, no terminator) and returns the length written;
/// escapes bytes outside [0-9A-Za-z-_*] as `\DDD` or `\X` (RFC 1035 §5.1).
/// Truncates silently at `cap`. For logs and tests.
size_t to_text(std::string_view name, char* out, size_t cap) noexcept;

} // namespace dns
