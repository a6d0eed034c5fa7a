#pragma once

/// @file
/// DNS messages on the wire (RFC 1035 §4): a bounds-checked reader that
/// decompresses names, the parser of queries built on it, and a writer that
/// builds responses with name compression into a caller-provided buffer.
///
/// **Hostile input.** Every read is bounds-checked against the message.
/// Compression pointers must point strictly backwards, before the start of
/// the label sequence that holds them (so a chain of pointers can only go
/// down and always ends; forward and self pointers are rejected), and a name
/// follows at most 127 of them. Label lengths 64..191 (the reserved and
/// extended label types) are rejected, as are names longer than 255 bytes
/// once decompressed, records and counts that run past the end, and bytes
/// after the last record.
///
/// **Memory.** Nothing here allocates from the heap: the reader decodes names
/// into caller buffers, `parse_query` takes its name buffers from a
/// `mayfly::arena`, and the writer writes into a buffer it is given (the
/// responder leases it from the handler's arena). All functions are
/// `noexcept`.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "examples/dns/wire.hpp"
#include "examples/dns/zone.hpp"
#include <mayfly/runtime/arena.hpp>

namespace dns {

/// The 12-byte message header.
struct header {
  uint16_t id = 0;
  uint16_t flags = 0;
  uint16_t qdcount = 0;
  uint16_t ancount = 0;
  uint16_t nscount = 0;
  uint16_t arcount = 0;

  uint8_t rcode() const noexcept {
    return static_cast<uint8_t>(flags & 0xF);
  }
};

/// Why a message or a name could not be read.
enum class wire_error : uint8_t {
  none = 0,
  truncated,      ///< ran past the end of the message
  bad_pointer,    ///< a compression pointer that does not point backwards
  bad_label,      ///< a label length of 64..191 (reserved label types)
  name_too_long,  ///< more than 255 bytes once decompressed
  bad_count,      ///< QDCOUNT is not 1 (queries only)
  bad_opt,        ///< an OPT record that is not root-owned, or a second one
  bad_rdata,      ///< RDATA that does not match its type
  trailing_bytes, ///< bytes after the last record
};

/// "truncated message", ...
const char* to_string(wire_error x) noexcept;

/// Reads the possibly compressed name at `pos` into `out` (room for 255
/// bytes): the uncompressed wire form, lowercased when `lower` is set.
/// Sets `out_len` and `next` (the offset just after the name at `pos`,
/// not following pointers). O(name length + pointers).
wire_error read_name(std::string_view msg, size_t pos, char* out,
                     size_t& out_len, size_t& next,
                     bool lower = false) noexcept;

/// Reads the header of `msg`; false if it is shorter than 12 bytes.
bool read_header(std::string_view msg, header& h) noexcept;

/// The section a record belongs to.
enum class section : uint8_t { question, answer, authority, additional };

/// One resource record as found in a message.
struct rr_view {
  section where = section::answer;
  /// Offset of the owner name in the message.
  size_t offset = 0;
  /// The owner, uncompressed (wire form, case as received).
  char name[kMaxName];
  size_t name_len = 0;
  uint16_t type = 0;
  uint16_t klass = 0;
  uint32_t ttl = 0;
  size_t rdata_offset = 0;
  uint16_t rdlength = 0;

  std::string_view owner() const noexcept {
    return {name, name_len};
  }
};

/// Walks a message section by section: the header, each question (as an
/// `rr_view` without TTL and RDATA), each record. Stops at the first error.
///
/// ```cpp
/// message_reader rd{msg};
/// rr_view rr;
/// while (rd.next(rr)) { ... }
/// if (rd.error() != wire_error::none) { ... }   // malformed
/// ```
class message_reader {
public:
  explicit message_reader(std::string_view msg) noexcept;

  /// The header (zero if the message is shorter than 12 bytes).
  const header& hdr() const noexcept {
    return hdr_;
  }

  /// Reads the next question or record into `rr`; false at the end or at
  /// an error. O(size of the entry).
  bool next(rr_view& rr) noexcept;

  /// The first error met, or `none`. After `next` returned false with no
  /// error, `at_end()` tells whether bytes were left over.
  wire_error error() const noexcept {
    return error_;
  }

  /// Every section was read and nothing is left over.
  bool at_end() const noexcept {
    return error_ == wire_error::none && remaining_total() == 0
           && pos_ == msg_.size();
  }

  size_t position() const noexcept {
    return pos_;
  }

private:
  size_t remaining_total() const noexcept {
    return size_t{left_[0]} + left_[1] + left_[2] + left_[3];
  }

  std::string_view msg_;
  header hdr_;
  size_t pos_ = kHeaderSize;
  uint16_t left_[4] = {0, 0, 0, 0};
  wire_error error_ = wire_error::none;
};

/// Checks that `msg` is a well-formed message as far as this example knows
/// DNS: every name, every count, the RDATA of A, AAAA, NS, CNAME, SOA, MX,
/// TXT and OPT (their embedded names may be compressed), no trailing bytes.
/// For tests and fuzzers. O(message size).
wire_error check_message(std::string_view msg) noexcept;

// -- queries ------------------------------------------------------------------

/// A parsed query. Names live in the arena given to `parse_query`.
struct query {
  header hdr;
  /// The question's name as received (wire form).
  std::string_view qname;
  /// The same, lowercased: the lookup key.
  std::string_view qname_key;
  uint16_t qtype = 0;
  uint16_t qclass = 0;
  /// An OPT record was present (EDNS, RFC 6891).
  bool edns = false;
  /// Its requestor's UDP payload size (the OPT's class field).
  uint16_t udp_size = 0;
  uint8_t edns_version = 0;
  /// The DNSSEC OK bit (copied into the response's OPT, RFC 3225).
  bool dnssec_ok = false;
};

/// What `parse_query` found.
enum class parse_status : uint8_t {
  ok,
  /// Shorter than a header: not worth an answer.
  too_short,
  /// A header but a broken rest: answer FORMERR. `q.hdr` is valid;
  /// `q.qname` is set if the question itself could be read.
  malformed,
  /// The arena refused the name buffers.
  no_memory,
};

/// Parses a query: header, exactly one question, then every record of the
/// other sections (skipped, except one OPT in the additional section).
/// `why` receives the reason of a `malformed` status. Does not look at QR
/// or OPCODE (the responder does). O(message size); two arena allocations
/// of 255 bytes.
parse_status parse_query(std::string_view msg, mayfly::arena& arena, query& q,
                         wire_error* why = nullptr) noexcept;

// -- responses ----------------------------------------------------------------

/// Builds a message into a caller-provided buffer: header, question, then
/// records, compressing every name (owners and the names inside NS, CNAME,
/// SOA and MX RDATA) against all names written before. Records are added
/// only while they fit under `limit`; `mark`/`rollback` drop a partial
/// RRset.
///
/// Compression: the offsets of up to `kMaxTargets` label starts written so
/// far are remembered; a name is written as its longest suffix found among
/// them (compared case-insensitively, so a suffix may come out in the case
/// of the earlier name it points to: the same name, RFC 4343) preceded by
/// the labels that differ.
/// O(labels * targets * name length) per name: small for messages of a few
/// hundred bytes, and no allocation.
class message_writer {
public:
  static constexpr size_t kMaxTargets = 96;

  /// Writes into `buf`; never beyond `limit` bytes (at least 12).
  message_writer(unsigned char* buf, size_t limit) noexcept;

  /// Sets the header fields (counts are filled in by `finish`).
  void set_header(uint16_t id, uint16_t flags) noexcept {
    id_ = id;
    flags_ = flags;
  }

  uint16_t flags() const noexcept {
    return flags_;
  }

  void set_flags(uint16_t flags) noexcept {
    flags_ = flags;
  }

  /// Lowers or raises the limit (not below what is written, not above the
  /// buffer size given at construction).
  void set_limit(size_t limit) noexcept;

  size_t limit() const noexcept {
    return limit_;
  }

  /// Adds a question. False if it does not fit.
  bool add_question(std::string_view name, uint16_t qtype,
                    uint16_t qclass) noexcept;

  /// Adds a record of the zone under `owner` to `where`. False if it does
  /// not fit (nothing of it is kept).
  bool add_record(section where, std::string_view owner,
                  const record& r) noexcept;

  /// As `add_record` with an explicit TTL.
  bool add_record(section where, std::string_view owner, const record& r,
                  uint32_t ttl) noexcept;

  /// Adds an OPT record (root owner, no options) to the additional
  /// section. False if it does not fit.
  bool add_opt(uint16_t udp_size, uint8_t ext_rcode, bool dnssec_ok) noexcept;

  /// A point to roll back to.
  struct mark_t {
    size_t size;
    size_t targets;
    uint16_t counts[4];
  };

  mark_t mark() const noexcept;

  /// Forgets everything written after `m`.
  void rollback(const mark_t& m) noexcept;

  /// Writes the header; returns the message. Further adds are allowed
  /// (call `finish` again).
  std::string_view finish() noexcept;

  size_t size() const noexcept {
    return size_;
  }

  uint16_t count(section s) const noexcept {
    return counts_[static_cast<size_t>(s)];
  }

private:
  bool write_name(std::string_view name) noexcept;
  bool suffix_at(size_t offset, std::string_view suffix) const noexcept;
  bool put(const void* p, size_t n) noexcept;
  bool put16(uint16_t v) noexcept;
  bool put32(uint32_t v) noexcept;

  unsigned char* buf_;
  size_t capacity_;
  size_t limit_;
  size_t size_ = kHeaderSize;
  uint16_t id_ = 0;
  uint16_t flags_ = 0;
  uint16_t counts_[4] = {0, 0, 0, 0};
  uint16_t targets_[kMaxTargets];
  size_t ntargets_ = 0;
};

// -- client side (tests, fuzz seeds, load generators) -------------------------

/// Converts a presentation name ("www.example.test", trailing dot optional,
/// `\.` and `\DDD` escapes) to wire form in `out` (room for 255 bytes).
/// Returns the length, 0 if the name is invalid.
size_t name_from_text(std::string_view text, char* out) noexcept;

/// Writes a query for `name` (presentation form) and `qtype` into `buf`
/// (`cap` bytes); `edns_size` > 0 adds an OPT record advertising that UDP
/// payload size. Returns the length, 0 if it does not fit or the name is
/// invalid.
size_t write_query(unsigned char* buf, size_t cap, std::string_view name,
                   uint16_t qtype, uint16_t id = 0x1234,
                   uint16_t flags = flag::rd, uint16_t edns_size = 0) noexcept;

} // namespace dns
