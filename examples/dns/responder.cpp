#include "examples/dns/responder.hpp"

#include <algorithm>

namespace dns {

namespace {

// Bytes an OPT record without options takes: root, type, class, TTL, RDLEN.
constexpr size_t kOptSize = 11;

// Header bits copied from the query: OPCODE, RD, CD.
constexpr uint16_t kCopiedFlags = 0x7800 | flag::rd | flag::cd;

uint32_t negative_ttl(const record& soa) noexcept {
  uint32_t minimum
    = soa.fixed.size() == 20
        ? get32(reinterpret_cast<const unsigned char*>(soa.fixed.data()) + 16)
        : 0;
  return std::min(soa.ttl, minimum);
}

// Builds one response; the pieces of `respond` that every rcode shares.
class response {
public:
  response(const query& q, unsigned char* buf, size_t limit,
           bool with_opt) noexcept
    : q_(q), w_(buf, limit), limit_(limit), with_opt_(with_opt) {
    w_.set_header(q.hdr.id, flag::qr | (q.hdr.flags & kCopiedFlags));
    if (with_opt_)
      w_.set_limit(limit - kOptSize); // the OPT always fits
  }

  message_writer& writer() noexcept {
    return w_;
  }

  void question() noexcept {
    if (!q_.qname.empty())
      w_.add_question(q_.qname, q_.qtype, q_.qclass);
  }

  void truncate() noexcept {
    tc_ = true;
  }

  bool truncated() const noexcept {
    return tc_;
  }

  std::string_view finish(rcode rc, bool aa, outcome& out) noexcept {
    auto code = static_cast<uint16_t>(rc);
    uint16_t flags = w_.flags() | (code & 0xF);
    if (aa)
      flags |= flag::aa;
    if (tc_)
      flags |= flag::tc;
    w_.set_flags(flags);
    if (with_opt_) {
      w_.set_limit(limit_);
      w_.add_opt(kAdvertisedUdpSize, static_cast<uint8_t>(code >> 4),
                 q_.dnssec_ok);
    }
    out.what = outcome::kind::answered;
    out.code = rc;
    out.authoritative = aa;
    out.truncated = tc_;
    out.answers = w_.count(section::answer);
    return w_.finish();
  }

private:
  const query& q_;
  message_writer w_;
  size_t limit_;
  bool with_opt_;
  bool tc_ = false;
};

// Adds every record of `nd` matching `qtype` to the answer section; on
// overflow drops all of them and truncates. Returns how many were added.
size_t add_matching(response& resp, std::string_view owner, const node& nd,
                    uint16_t qtype) noexcept {
  auto& w = resp.writer();
  auto m = w.mark();
  size_t n = 0;
  for (auto& r : nd.records) {
    if (qtype != type::any && r.type != qtype)
      continue;
    if (!w.add_record(section::answer, owner, r)) {
      w.rollback(m);
      resp.truncate();
      return n;
    }
    ++n;
  }
  return n;
}

} // namespace

std::string_view respond(const zone& z, std::string_view msg,
                         mayfly::arena& arena, outcome& out) noexcept {
  out = outcome{};
  header h;
  if (!read_header(msg, h)) {
    out.what = outcome::kind::dropped_short;
    return {};
  }
  if ((h.flags & flag::qr) != 0) {
    out.what = outcome::kind::dropped_qr;
    return {};
  }
  query q;
  auto status = parse_query(msg, arena, q);
  if (status == parse_status::no_memory) {
    out.what = outcome::kind::no_memory;
    return {};
  }
  const bool ok = status == parse_status::ok;
  size_t limit = kClassicUdpSize;
  if (ok && q.edns) // the smaller of the client's and our size, RFC 6891
    limit = std::clamp<size_t>(q.udp_size, kClassicUdpSize, kAdvertisedUdpSize);
  auto* buf = static_cast<unsigned char*>(arena.try_allocate(limit, 1));
  if (buf == nullptr) {
    out.what = outcome::kind::no_memory;
    return {};
  }
  // A malformed query gets neither OPT (RFC 6891 §7) nor, when the question
  // itself was broken, a question.
  response resp{q, buf, limit, ok && q.edns};
  resp.question();
  if (opcode_of(h.flags) != 0)
    return resp.finish(rcode::notimp, false, out);
  if (!ok)
    return resp.finish(rcode::formerr, false, out);
  if (q.edns && q.edns_version > 0)
    return resp.finish(rcode::badvers, false, out);
  if (q.qclass != klass::in && q.qclass != klass::any)
    return resp.finish(rcode::refused, false, out);
  if (!is_at_or_below(q.qname_key, z.apex_key()))
    return resp.finish(rcode::refused, false, out);
  if (type::is_unsupported_meta(q.qtype))
    return resp.finish(rcode::notimp, false, out);

  // Follow CNAMEs through the zone. `visited` holds the keys of the names
  // whose CNAME was added, to stop at the first repetition.
  auto& w = resp.writer();
  std::string_view visited[kMaxCnameChain];
  int links = 0;
  std::string_view key = q.qname_key;
  std::string_view owner = q.qname; // the question's spelling: compresses
                                    // to a pointer at offset 12
  bool negative = false;
  rcode rc = rcode::noerror;
  for (;;) {
    // The name's node, or the wildcard that synthesizes it (RFC 4592):
    // either way the answer's owner is the name asked for (`owner`).
    const node* nd = z.lookup(key).nd;
    if (nd == nullptr) {
      rc = rcode::nxdomain;
      negative = true;
      break;
    }
    const record* cname = nd->cname();
    if (cname != nullptr && q.qtype != type::cname && q.qtype != type::any) {
      if (!w.add_record(section::answer, owner, *cname)) {
        resp.truncate();
        break;
      }
      visited[links++] = key;
      const std::string& target = cname->name1;
      if (!is_at_or_below(target, z.apex()) || links == kMaxCnameChain)
        break; // out of zone: the client goes on; too long: stop here
      auto* tkey = static_cast<char*>(arena.try_allocate(target.size(), 1));
      if (tkey == nullptr) {
        out.what = outcome::kind::no_memory;
        return {};
      }
      for (size_t i = 0; i < target.size(); ++i)
        tkey[i] = ascii_lower(target[i]);
      std::string_view next{tkey, target.size()};
      if (std::find(visited, visited + links, next) != visited + links)
        break; // a loop: every link is in the answer once
      key = next;
      owner = target;
      continue;
    }
    if (add_matching(resp, owner, *nd, q.qtype) == 0 && !resp.truncated())
      negative = true; // NODATA
    break;
  }
  if (negative && !resp.truncated()) {
    const record& soa = z.soa();
    if (!w.add_record(section::authority, z.apex(), soa, negative_ttl(soa)))
      resp.truncate();
  }
  return resp.finish(rc, true, out);
}

} // namespace dns
