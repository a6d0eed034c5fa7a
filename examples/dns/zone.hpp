#pragma once

/// @file
/// `dns::zone`: one authoritative zone, parsed from an RFC 1035 master file
/// at start-up and then shared read-only by every handler.
///
/// **Master-file syntax accepted** (RFC 1035 §5, RFC 2308 §4):
/// - `$ORIGIN name`, `$TTL ttl`; `$INCLUDE` and other directives are errors.
/// - Owner: `@` (the current origin), a relative name (the origin is
///   appended), an absolute name (trailing dot), or omitted (the line starts
///   with a blank: the previous record's owner).
/// - `[ttl] [class]` or `[class] [ttl]` before the type, both optional. A
///   TTL is a decimal number of seconds or BIND-style units (`1h30m`, `2d`,
///   `1w`), at most 2^31-1. An omitted TTL is `$TTL`, else the last explicit
///   TTL (RFC 1035), else an error. The only class is `IN`.
/// - Types SOA, NS, A, AAAA, TXT, CNAME, MX (names, types and classes are
///   case-insensitive).
/// - `;` comments, `( ... )` spanning lines, quoted strings with `\X` and
///   `\DDD` escapes (also in names: `a\.b` is one label).
/// - TXT holds one or more character-strings, quoted or not.
///
/// **Checks**: labels <= 63 bytes, names <= 255 bytes, character-strings
/// <= 255 bytes; exactly one SOA, at the zone apex (the SOA's owner); every
/// owner at or below the apex; a CNAME owner holds no other data and at most
/// one CNAME (RFC 1034 §3.6.2). Identical records are merged. Errors come
/// back as values naming the line ("line 12: label longer than 63 bytes");
/// parsing never throws out of `parse_zone` and never crashes, whatever the
/// input.
///
/// **Wildcards** (RFC 4592): an owner whose first label is `*` is the
/// source of synthesis for the names below its parent that do not exist;
/// `lookup` finds it (see there). A `*` elsewhere in a name is an ordinary
/// label.
///
/// **Not supported** (documented limits of the example): delegations below
/// the apex (NS records there are served as ordinary data, no referrals),
/// DNSSEC, generic `TYPEnnn` syntax.
///
/// **Lookup.** Nodes are kept sorted by their lowercase wire name, so
/// `find` is a binary search over `string_view`s: O(log n), no allocation,
/// safe from any number of threads at once (the zone is immutable after
/// parsing). Every name between the apex and an owner exists as a node (an
/// *empty non-terminal* when it owns no records), so that a query for it is
/// answered NODATA rather than NXDOMAIN (RFC 8020).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "examples/dns/wire.hpp"

namespace dns {

/// One resource record. Names inside the RDATA are kept apart from the
/// fixed bytes so that the responder can compress them.
struct record {
  uint16_t type = 0;
  uint32_t ttl = 0;
  /// NS, CNAME: the target; MX: the exchange; SOA: MNAME. Wire form,
  /// original case.
  std::string name1;
  /// SOA: RNAME.
  std::string name2;
  /// A: 4 bytes; AAAA: 16; TXT: the length-prefixed strings; MX: the
  /// 16-bit preference; SOA: serial, refresh, retry, expire, minimum (20).
  std::string fixed;
};

/// All records owned by one name.
struct node {
  /// Lowercase wire name: the lookup key.
  std::string key;
  /// Wire name as first written in the file (original case).
  std::string owner;
  std::vector<record> records;

  /// Whether the node owns a CNAME (then it owns nothing else).
  const record* cname() const noexcept;
};

/// What `zone::lookup` found for a name.
struct match {
  /// The node answering for the name: the name's own, or the wildcard that
  /// synthesizes it; null when the name does not exist (NXDOMAIN).
  const node* nd = nullptr;
  /// `nd` is a wildcard (`*.<closest encloser>`) standing in for the name:
  /// its records are answered with the query's name as owner.
  bool synthesized = false;
};

/// An immutable zone. See file comment.
class zone {
public:
  zone() = default;

  /// The apex (the SOA's owner), wire form in original case.
  std::string_view apex() const noexcept {
    return apex_;
  }

  /// The apex as a lowercase wire name.
  std::string_view apex_key() const noexcept {
    return apex_key_;
  }

  /// The SOA record.
  const record& soa() const noexcept {
    return soa_;
  }

  /// The node named `key` (a lowercase wire name), or null.
  const node* find(std::string_view key) const noexcept;

  /// The node that answers for `key` (a lowercase wire name at or below
  /// the apex), RFC 4592 §3.3.1: the name's own node if it exists (empty
  /// non-terminals included: they exist and block wildcards); otherwise the
  /// source of synthesis `*.<closest encloser>` if the zone has it, where
  /// the closest encloser is the longest existing ancestor of `key`;
  /// otherwise nothing. O(log n) when the name exists or the zone has no
  /// wildcard, O(labels * log n) else; no allocation.
  match lookup(std::string_view key) const noexcept;

  /// Whether some owner's first label is `*`.
  bool has_wildcards() const noexcept {
    return has_wildcards_;
  }

  /// As `find`, for a wire name in any case (lowercases into a stack
  /// buffer). Null for a malformed name.
  const node* find_any_case(std::string_view name) const noexcept;

  /// Every node, sorted by key.
  const std::vector<node>& nodes() const noexcept {
    return nodes_;
  }

  /// Number of records (empty non-terminals own none).
  size_t record_count() const noexcept;

private:
  friend class zone_builder;
  std::string apex_;
  std::string apex_key_;
  record soa_;
  std::vector<node> nodes_;
  bool has_wildcards_ = false;
};

/// What `parse_zone` returns: a zone, or why not.
struct zone_result {
  bool ok = false;
  /// The first error: "line 12: label longer than 63 bytes". Empty if ok.
  std::string message;
  /// The error's line (1-based); 0 when the error concerns the whole file
  /// (e.g. no SOA).
  int line = 0;
  zone value;
};

/// Parses master-file `text`. `origin` is the initial origin in
/// presentation form ("example.test." or "example.test"); empty means
/// none until a `$ORIGIN` (relative names are then errors). Never throws;
/// on std::bad_alloc it reports "out of memory".
zone_result parse_zone(std::string_view text,
                       std::string_view origin = {}) noexcept;

/// Reads `path` and parses it (see `parse_zone`). Errors come back as
/// values naming the path: I/O errors with line 0 and the OS's reason
/// ("/etc: cannot read the zone file: Is a directory", "...: cannot open
/// the zone file: No such file or directory"), as do files that are not
/// regular or larger than `kMaxZoneFileSize`; parse errors as
/// "PATH: line 12: ...".
/// The largest zone file `load_zone_file` reads (bounds what a wrong path
/// such as a device can make it allocate).
inline constexpr size_t kMaxZoneFileSize = size_t{256} << 20;

zone_result load_zone_file(const std::string& path,
                           std::string_view origin = {}) noexcept;

} // namespace dns
