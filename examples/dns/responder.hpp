#pragma once

/// @file
/// The authoritative responder of `mayfly-dns`: one query in, one response
/// (or none) out, built in the caller's arena against an immutable zone.
///
/// **Decisions** (docs/workloads.md §3 leaves these open):
/// - Shorter than 12 bytes: no reply. QR=1 (a response, not a query): no
///   reply either, so that two servers can never ping-pong.
/// - OPCODE != 0: NOTIMP. QDCOUNT != 1 or any malformation after the header
///   (see message.hpp): FORMERR, echoing the ID, OPCODE and RD, and the
///   question when it could be read.
/// - QCLASS other than IN or ANY: REFUSED. A name outside the zone:
///   REFUSED (no AA). QTYPE OPT, TKEY, TSIG, IXFR, AXFR, MAILB or MAILA
///   (`type::is_unsupported_meta`): NOTIMP; there is no zone transfer.
///   Every other QTYPE, whether this example can load records of it or not
///   (CAA, SRV, DS, HTTPS, TYPE999, TYPE65280, ...), is looked up like any
///   data type (RFC 3597): NODATA or NXDOMAIN with the SOA, as NSD does.
/// - In the zone: AA=1. Records of the type: NOERROR with them. An in-zone
///   CNAME is followed (up to 16 links; a name met twice ends the chain):
///   each link is in the answer section, then the target's records. A
///   target outside the zone ends the chain (the client resolves it). A
///   name that does not exist: NXDOMAIN (after a CNAME chain too, RFC
///   6604), the SOA in the authority section with TTL = min(SOA TTL, SOA
///   MINIMUM) (RFC 2308 §3). A name with no record of the type (empty
///   non-terminals included): NOERROR/NODATA, the SOA in authority.
/// - Wildcards (RFC 4592, `zone::lookup`): a name that does not exist is
///   answered from `*.<closest encloser>` when the zone has it, with the
///   query's name as the owner of every synthesized record (a wildcard
///   CNAME is followed like any CNAME; a CNAME target may be synthesized
///   too). A name that exists, empty non-terminals included, never matches
///   a wildcard; no source of synthesis: NXDOMAIN.
/// - QTYPE ANY: every record of the name (no CNAME chasing).
/// - RD is copied, RA=0, CD is copied (RFC 6840), AD=0, Z=0.
/// - EDNS: a query with an OPT record gets one back (UDP size 1232, the
///   query's DO bit, RFC 3225) and may be answered up to the smaller of
///   its advertised size and ours (`kAdvertisedUdpSize`), but never below
///   512 (RFC 6891 §6.2.5); without OPT the limit is 512 bytes. An EDNS
///   version above 0 gets BADVERS (RFC 6891 §6.1.3).
/// - Too large: whole RRsets that do not fit are left out and TC is set.
///   This example serves no TCP, so a client that insists on the rest gets
///   nothing more (`dig +ignore` shows the partial answer).
///
/// Cost: no heap allocation; from the arena, two 255-byte name buffers, the
/// response buffer (the size limit) and a small chain list.

#include <cstdint>
#include <string_view>

#include "examples/dns/message.hpp"
#include "examples/dns/zone.hpp"
#include <mayfly/runtime/arena.hpp>

namespace dns {

/// What `respond` did.
struct outcome {
  enum class kind : uint8_t {
    answered,      ///< a response was built (see `code`)
    dropped_short, ///< shorter than a header: no response
    dropped_qr,    ///< QR set (a response): no response
    no_memory,     ///< the arena refused: no response
  };
  kind what = kind::answered;
  rcode code = rcode::noerror;
  bool authoritative = false;
  bool truncated = false;
  /// Records in the answer section.
  uint16_t answers = 0;
};

/// Most CNAME links followed for one query.
inline constexpr int kMaxCnameChain = 16;

/// Builds the response to `msg` in `arena`; empty when no response is due
/// (see `out.what`). The view lives as long as the arena's current
/// allocations. Never throws; any input is safe.
std::string_view respond(const zone& z, std::string_view msg,
                         mayfly::arena& arena, outcome& out) noexcept;

} // namespace dns
