#include "examples/dns/zone.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <new>
#include <utility>

namespace dns {

// -- wire.hpp -----------------------------------------------------------------

size_t to_text(std::string_view name, char* out, size_t cap) noexcept {
  size_t n = 0;
  auto put = [&](char c) {
    if (n < cap)
      out[n++] = c;
  };
  size_t pos = 0;
  if (name.size() == 1 && name[0] == 0) {
    put('.');
    return n;
  }
  while (pos < name.size()) {
    auto len = static_cast<unsigned char>(name[pos]);
    if (len == 0 || pos + 1 + len > name.size())
      break;
    for (size_t i = 0; i < len; ++i) {
      auto c = static_cast<unsigned char>(name[pos + 1 + i]);
      bool plain = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')
                   || (c >= 'A' && c <= 'Z') || c == '-' || c == '_'
                   || c == '*';
      if (plain) {
        put(static_cast<char>(c));
      } else if (c > 0x20 && c < 0x7F) {
        put('\\');
        put(static_cast<char>(c));
      } else {
        put('\\');
        put(static_cast<char>('0' + c / 100));
        put(static_cast<char>('0' + c / 10 % 10));
        put(static_cast<char>('0' + c % 10));
      }
    }
    put('.');
    pos += 1 + len;
  }
  return n;
}

// -- zone ---------------------------------------------------------------------

const record* node::cname() const noexcept {
  for (auto& r : records)
    if (r.type == type::cname)
      return &r;
  return nullptr;
}

const node* zone::find(std::string_view key) const noexcept {
  auto it = std::lower_bound(nodes_.begin(), nodes_.end(), key,
                             [](const node& n, std::string_view k) {
                               return std::string_view{n.key} < k;
                             });
  if (it != nodes_.end() && it->key == key)
    return &*it;
  return nullptr;
}

match zone::lookup(std::string_view key) const noexcept {
  if (const node* nd = find(key))
    return {nd, false};
  if (!has_wildcards_)
    return {};
  // The closest encloser: strip labels until a name exists. The apex
  // exists, so this ends at the latest there (and a key not below the apex
  // stops when it gets shorter than the apex).
  size_t pos = 0;
  while (pos < key.size() && key[pos] != 0) {
    pos += 1 + static_cast<unsigned char>(key[pos]);
    if (pos >= key.size() || key.size() - pos < apex_key_.size())
      return {};
    std::string_view encloser = key.substr(pos);
    if (find(encloser) == nullptr)
      continue;
    // The source of synthesis: "*." + the closest encloser. It is at least
    // one label shorter than `key` plus two bytes, so it fits.
    char buf[kMaxName];
    if (encloser.size() + 2 > sizeof(buf))
      return {};
    buf[0] = 1;
    buf[1] = '*';
    std::copy(encloser.begin(), encloser.end(), buf + 2);
    const node* wild = find({buf, encloser.size() + 2});
    return {wild, wild != nullptr};
  }
  return {};
}

const node* zone::find_any_case(std::string_view name) const noexcept {
  if (name.size() > kMaxName)
    return nullptr;
  char buf[kMaxName];
  for (size_t i = 0; i < name.size(); ++i)
    buf[i] = ascii_lower(name[i]);
  return find({buf, name.size()});
}

size_t zone::record_count() const noexcept {
  size_t n = 0;
  for (auto& nd : nodes_)
    n += nd.records.size();
  return n;
}

// -- the parser ---------------------------------------------------------------

// The parser's way into zone's private members.
class zone_builder {
public:
  static void assemble(zone& z, std::string apex, std::string apex_key,
                       record soa, std::vector<node> nodes) {
    z.apex_ = std::move(apex);
    z.apex_key_ = std::move(apex_key);
    z.soa_ = std::move(soa);
    z.nodes_ = std::move(nodes);
    z.has_wildcards_ = false;
    for (auto& nd : z.nodes_)
      if (nd.key.size() >= 2 && nd.key[0] == 1 && nd.key[1] == '*')
        z.has_wildcards_ = true;
  }
};

namespace {

// A lexical token of a master file: the raw text between delimiters, with
// escapes still in place (names and TXT decode them differently), and
// without the quotes of a quoted string.
struct token {
  std::string text;
  bool quoted = false;
  int line = 0;
};

// One logical line (parentheses joined): an entry of RFC 1035 §5.1.
struct entry {
  int line = 0;
  bool owner_omitted = false; // the physical line began with a blank
  std::vector<token> tokens;
};

std::string name_text(std::string_view wire) {
  char buf[4 * kMaxName + 2];
  return std::string(buf, to_text(wire, buf, sizeof(buf)));
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i]))
      return false;
  return true;
}

bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

class parser {
public:
  parser(std::string_view text, zone_result& out) : text_(text), out_(out) {
  }

  bool run(std::string_view origin);

private:
  // -- errors --
  bool fail(int line, std::string msg) {
    out_.ok = false;
    out_.line = line;
    out_.message = line > 0 ? "line " + std::to_string(line) + ": " + msg
                            : std::move(msg);
    return false;
  }

  // -- lexing --
  bool lex();
  bool lex_quoted(size_t& pos, int line, token& tok);
  void lex_plain(size_t& pos, token& tok);

  // -- entries --
  bool handle(entry& e);
  bool directive(entry& e);
  bool parse_name(const token& tok, std::string& out);
  bool parse_ttl(const token& tok, uint32_t& out, const char* what);
  bool parse_u32(const token& tok, uint32_t& out, uint32_t max,
                 const char* what);
  bool decode_string(const token& tok, std::string& out);
  bool parse_rdata(const entry& e, size_t i, record& r);
  bool add(const std::string& owner, record r, int line);
  bool finish();

  std::string_view text_;
  zone_result& out_;
  std::vector<entry> entries_;

  std::string origin_; // wire; empty: none
  bool have_default_ttl_ = false;
  uint32_t default_ttl_ = 0; // $TTL
  bool have_last_ttl_ = false;
  uint32_t last_ttl_ = 0;  // last explicit TTL (RFC 1035 rule)
  std::string last_owner_; // wire; empty: none yet

  std::map<std::string, node> nodes_;               // by lowercase wire name
  std::vector<std::pair<std::string, int>> owners_; // key, line per record
  bool have_soa_ = false;
  std::string soa_key_;
};

// Splits the text into entries. Newlines end an entry unless inside
// parentheses; `;` starts a comment outside quotes; a backslash escapes the
// next character (kept in the token text, decoded later).
bool parser::lex() {
  size_t pos = 0;
  int line = 1;
  int depth_line = 0; // line of the open '(' (0: none)
  entry cur;
  bool at_line_start = true;
  auto flush = [&] {
    if (!cur.tokens.empty())
      entries_.push_back(std::move(cur));
    cur = entry{};
  };
  while (pos < text_.size()) {
    char c = text_[pos];
    if (at_line_start) {
      at_line_start = false;
      if (depth_line == 0) {
        flush();
        cur.line = line;
        cur.owner_omitted = c == ' ' || c == '\t';
      }
    }
    if (c == '\n') {
      ++line;
      ++pos;
      at_line_start = true;
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\r') {
      ++pos;
      continue;
    }
    if (c == ';') {
      while (pos < text_.size() && text_[pos] != '\n')
        ++pos;
      continue;
    }
    if (c == '(') {
      if (depth_line != 0)
        return fail(line, "nested '(' (already open since line "
                            + std::to_string(depth_line) + ")");
      depth_line = line;
      ++pos;
      continue;
    }
    if (c == ')') {
      if (depth_line == 0)
        return fail(line, "')' without '('");
      depth_line = 0;
      ++pos;
      continue;
    }
    token tok;
    tok.line = line;
    if (c == '"') {
      if (!lex_quoted(pos, line, tok))
        return false;
    } else {
      lex_plain(pos, tok);
    }
    if (cur.tokens.empty())
      cur.line = tok.line;
    cur.tokens.push_back(std::move(tok));
  }
  if (depth_line != 0)
    return fail(depth_line, "'(' not closed before the end of the file");
  flush();
  return true;
}

bool parser::lex_quoted(size_t& pos, int line, token& tok) {
  tok.quoted = true;
  ++pos; // opening quote
  while (pos < text_.size()) {
    char c = text_[pos];
    if (c == '"') {
      ++pos;
      return true;
    }
    if (c == '\n')
      return fail(line, "unterminated quoted string");
    if (c == '\\') {
      if (pos + 1 >= text_.size() || text_[pos + 1] == '\n')
        return fail(line, "unterminated quoted string");
      tok.text.push_back(c);
      tok.text.push_back(text_[pos + 1]);
      pos += 2;
      continue;
    }
    tok.text.push_back(c);
    ++pos;
  }
  return fail(line, "unterminated quoted string");
}

void parser::lex_plain(size_t& pos, token& tok) {
  while (pos < text_.size()) {
    char c = text_[pos];
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ';' || c == '('
        || c == ')' || c == '"')
      return;
    if (c == '\\' && pos + 1 < text_.size() && text_[pos + 1] != '\n') {
      tok.text.push_back(c);
      tok.text.push_back(text_[pos + 1]);
      pos += 2;
      continue;
    }
    // A backslash before a newline or the end stays alone in the token;
    // the decoders reject it as a dangling escape.
    tok.text.push_back(c);
    ++pos;
  }
}

// Decodes `\X` and `\DDD` of a character-string (RFC 1035 §5.1).
bool parser::decode_string(const token& tok, std::string& out) {
  out.clear();
  const auto& s = tok.text;
  for (size_t i = 0; i < s.size();) {
    if (s[i] != '\\') {
      out.push_back(s[i++]);
      continue;
    }
    if (i + 1 >= s.size())
      return fail(tok.line, "dangling '\\' at the end of a string");
    if (is_digit(s[i + 1])) {
      if (i + 3 >= s.size() || !is_digit(s[i + 2]) || !is_digit(s[i + 3]))
        return fail(tok.line, "\\DDD escape needs three digits");
      int v = (s[i + 1] - '0') * 100 + (s[i + 2] - '0') * 10 + (s[i + 3] - '0');
      if (v > 255)
        return fail(tok.line, "\\DDD escape above 255");
      out.push_back(static_cast<char>(v));
      i += 4;
      continue;
    }
    out.push_back(s[i + 1]);
    i += 2;
  }
  return true;
}

// Presentation name -> wire name (original case), relative names completed
// with the origin.
bool parser::parse_name(const token& tok, std::string& out) {
  const auto& s = tok.text;
  out.clear();
  if (!tok.quoted && s == "@") {
    if (origin_.empty())
      return fail(tok.line, "'@' used with no origin (set $ORIGIN)");
    out = origin_;
    return true;
  }
  if (s.empty())
    return fail(tok.line, "empty name");
  if (s == ".") {
    out.push_back('\0');
    return true;
  }
  std::string label;
  bool absolute = false;
  auto end_label = [&]() -> bool {
    if (label.empty())
      return fail(tok.line, "empty label in name '" + s + "'");
    if (label.size() > kMaxLabel)
      return fail(tok.line, "label longer than 63 bytes in name '"
                              + s.substr(0, 80) + "'");
    out.push_back(static_cast<char>(label.size()));
    out += label;
    label.clear();
    if (out.size() > kMaxName - 1)
      return fail(tok.line, "name longer than 255 bytes");
    return true;
  };
  for (size_t i = 0; i < s.size();) {
    char c = s[i];
    if (c == '\\') {
      if (i + 1 >= s.size())
        return fail(tok.line, "dangling '\\' at the end of a name");
      if (is_digit(s[i + 1])) {
        if (i + 3 >= s.size() || !is_digit(s[i + 2]) || !is_digit(s[i + 3]))
          return fail(tok.line, "\\DDD escape needs three digits");
        int v = (s[i + 1] - '0') * 100 + (s[i + 2] - '0') * 10
                + (s[i + 3] - '0');
        if (v > 255)
          return fail(tok.line, "\\DDD escape above 255");
        label.push_back(static_cast<char>(v));
        i += 4;
      } else {
        label.push_back(s[i + 1]);
        i += 2;
      }
    } else if (c == '.') {
      if (!end_label())
        return false;
      ++i;
      if (i == s.size())
        absolute = true;
    } else {
      label.push_back(c);
      ++i;
    }
    if (label.size() > kMaxLabel)
      return fail(tok.line, "label longer than 63 bytes in name '"
                              + s.substr(0, 80) + "'");
  }
  if (!absolute) {
    if (!label.empty() && !end_label())
      return false;
    if (origin_.empty())
      return fail(tok.line, "relative name '" + s.substr(0, 80)
                              + "' with no origin (set $ORIGIN)");
    if (out.size() + origin_.size() > kMaxName)
      return fail(tok.line, "name longer than 255 bytes");
    out += origin_;
  } else {
    out.push_back('\0');
  }
  return true;
}

// Seconds, or BIND units: 3600, 1h, 1h30m, 2d, 1w (case-insensitive).
bool parser::parse_ttl(const token& tok, uint32_t& out, const char* what) {
  const auto& s = tok.text;
  if (s.empty() || !is_digit(s[0]))
    return fail(tok.line,
                std::string{"bad "} + what + " '" + s.substr(0, 40) + "'");
  uint64_t total = 0;
  uint64_t cur = 0;
  bool have_digits = false;
  bool used_unit = false;
  constexpr uint64_t max = 0x7FFFFFFF; // RFC 2181 §8
  auto out_of_range = [&] {
    return fail(tok.line, std::string{what} + " out of range (max 2147483647)");
  };
  for (char c : s) {
    if (is_digit(c)) {
      cur = cur * 10 + static_cast<uint64_t>(c - '0');
      have_digits = true;
      if (cur > max)
        return out_of_range();
      continue;
    }
    uint64_t mult;
    switch (ascii_lower(c)) {
      case 's':
        mult = 1;
        break;
      case 'm':
        mult = 60;
        break;
      case 'h':
        mult = 3600;
        break;
      case 'd':
        mult = 86400;
        break;
      case 'w':
        mult = 604800;
        break;
      default:
        return fail(tok.line,
                    std::string{"bad "} + what + " '" + s.substr(0, 40) + "'");
    }
    if (!have_digits)
      return fail(tok.line,
                  std::string{"bad "} + what + " '" + s.substr(0, 40) + "'");
    total += cur * mult;
    if (total > max)
      return out_of_range();
    cur = 0;
    have_digits = false;
    used_unit = true;
  }
  if (have_digits)
    total += cur;
  else if (!used_unit)
    return fail(tok.line, std::string{"bad "} + what);
  if (total > max)
    return out_of_range();
  out = static_cast<uint32_t>(total);
  return true;
}

bool parser::parse_u32(const token& tok, uint32_t& out, uint32_t max,
                       const char* what) {
  const auto& s = tok.text;
  if (s.empty() || s.size() > 10)
    return fail(tok.line,
                std::string{"bad "} + what + " '" + s.substr(0, 40) + "'");
  uint64_t v = 0;
  for (char c : s) {
    if (!is_digit(c))
      return fail(tok.line,
                  std::string{"bad "} + what + " '" + s.substr(0, 40) + "'");
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > max)
    return fail(tok.line, std::string{what} + " out of range");
  out = static_cast<uint32_t>(v);
  return true;
}

bool parser::directive(entry& e) {
  auto& toks = e.tokens;
  const auto& d = toks[0].text;
  if (iequals(d, "$ORIGIN")) {
    if (toks.size() != 2)
      return fail(e.line, "$ORIGIN takes exactly one name");
    if (toks[1].text == "@" && !toks[1].quoted)
      return fail(e.line, "$ORIGIN needs a name, not '@'");
    std::string wire;
    // A relative $ORIGIN is relative to the current origin (RFC 1035 §5.1).
    if (!parse_name(toks[1], wire))
      return false;
    origin_ = std::move(wire);
    return true;
  }
  if (iequals(d, "$TTL")) {
    if (toks.size() != 2)
      return fail(e.line, "$TTL takes exactly one value");
    if (!parse_ttl(toks[1], default_ttl_, "TTL"))
      return false;
    have_default_ttl_ = true;
    return true;
  }
  if (iequals(d, "$INCLUDE"))
    return fail(e.line, "$INCLUDE is not supported");
  return fail(e.line, "unknown directive '" + d.substr(0, 40) + "'");
}

struct type_name {
  const char* name;
  uint16_t code;
};

constexpr type_name kTypes[] = {
  {"A", type::a},       {"NS", type::ns}, {"CNAME", type::cname},
  {"SOA", type::soa},   {"MX", type::mx}, {"TXT", type::txt},
  {"AAAA", type::aaaa},
};

constexpr const char* kOtherTypes[] = {
  "PTR",    "SRV",   "HINFO", "NAPTR", "CAA",     "DS",
  "DNSKEY", "RRSIG", "NSEC",  "NSEC3", "SPF",     "TLSA",
  "SSHFP",  "DNAME", "LOC",   "RP",    "AFSDB",   "SVCB",
  "HTTPS",  "URI",   "MB",    "MG",    "MR",      "MINFO",
  "WKS",    "NULL",  "OPT",   "CDS",   "CDNSKEY", "NSEC3PARAM",
};

bool is_class(std::string_view s) noexcept {
  return iequals(s, "IN") || iequals(s, "CH") || iequals(s, "HS")
         || iequals(s, "CS") || iequals(s, "NONE") || iequals(s, "ANY");
}

bool parser::handle(entry& e) {
  auto& toks = e.tokens;
  if (!e.owner_omitted && !toks[0].quoted && !toks[0].text.empty()
      && toks[0].text[0] == '$')
    return directive(e);
  size_t i = 0;
  std::string owner;
  if (e.owner_omitted) {
    if (last_owner_.empty())
      return fail(e.line, "no owner name, and no previous record to take "
                          "it from");
    owner = last_owner_;
  } else {
    if (!parse_name(toks[0], owner))
      return false;
    i = 1;
  }
  // [ttl] [class] or [class] [ttl], each at most once.
  bool have_ttl = false, have_class = false;
  uint32_t ttl = 0;
  for (int k = 0; k < 2 && i < toks.size(); ++k) {
    const auto& t = toks[i];
    if (!t.quoted && !have_class && is_class(t.text)) {
      if (!iequals(t.text, "IN"))
        return fail(t.line, "class " + t.text + " is not supported (only IN)");
      have_class = true;
      ++i;
    } else if (!t.quoted && !have_ttl && !t.text.empty()
               && is_digit(t.text[0])) {
      if (!parse_ttl(t, ttl, "TTL"))
        return false;
      have_ttl = true;
      ++i;
    }
  }
  if (i >= toks.size())
    return fail(e.line, "missing record type");
  const auto& tt = toks[i];
  record r;
  for (auto& t : kTypes)
    if (!tt.quoted && iequals(tt.text, t.name))
      r.type = t.code;
  if (r.type == 0) {
    for (auto* t : kOtherTypes)
      if (iequals(tt.text, t))
        return fail(tt.line, "record type " + tt.text + " is not supported");
    return fail(tt.line, "unknown record type '" + tt.text.substr(0, 40) + "'");
  }
  ++i;
  if (have_ttl) {
    r.ttl = ttl;
    have_last_ttl_ = true;
    last_ttl_ = ttl;
  } else if (have_default_ttl_) {
    r.ttl = default_ttl_;
  } else if (have_last_ttl_) {
    r.ttl = last_ttl_;
  } else {
    return fail(e.line, "no TTL: give one or set $TTL");
  }
  if (!parse_rdata(e, i, r))
    return false;
  last_owner_ = owner;
  return add(owner, std::move(r), e.line);
}

bool parser::parse_rdata(const entry& e, size_t i, record& r) {
  const auto& toks = e.tokens;
  size_t n = toks.size() - i;
  auto expect = [&](size_t want, const char* what) {
    if (n < want)
      return fail(e.line, std::string{"missing "} + what);
    if (n > want)
      return fail(toks[i + want].line, "unexpected '"
                                         + toks[i + want].text.substr(0, 40)
                                         + "' after the record data");
    return true;
  };
  switch (r.type) {
    case type::a:
    case type::aaaa: {
      if (!expect(1, r.type == type::a ? "IPv4 address" : "IPv6 address"))
        return false;
      unsigned char buf[16];
      int af = r.type == type::a ? AF_INET : AF_INET6;
      if (toks[i].text.find('\0') != std::string::npos
          || inet_pton(af, toks[i].text.c_str(), buf) != 1)
        return fail(toks[i].line,
                    std::string{"bad "} + (r.type == type::a ? "IPv4" : "IPv6")
                      + " address '" + toks[i].text.substr(0, 60) + "'");
      r.fixed.assign(reinterpret_cast<char*>(buf), r.type == type::a ? 4 : 16);
      return true;
    }
    case type::ns:
    case type::cname:
      if (!expect(1, "target name"))
        return false;
      return parse_name(toks[i], r.name1);
    case type::mx: {
      if (!expect(2, "MX preference and exchange"))
        return false;
      uint32_t pref;
      if (!parse_u32(toks[i], pref, 65535, "MX preference"))
        return false;
      r.fixed.resize(2);
      put16(reinterpret_cast<unsigned char*>(r.fixed.data()),
            static_cast<uint16_t>(pref));
      return parse_name(toks[i + 1], r.name1);
    }
    case type::soa: {
      if (!expect(7, "SOA fields (mname rname serial refresh retry expire "
                     "minimum)"))
        return false;
      if (!parse_name(toks[i], r.name1) || !parse_name(toks[i + 1], r.name2))
        return false;
      uint32_t v[5];
      if (!parse_u32(toks[i + 2], v[0], 0xFFFFFFFFu, "SOA serial"))
        return false;
      const char* what[] = {"", "SOA refresh", "SOA retry", "SOA expire",
                            "SOA minimum"};
      for (int k = 1; k < 5; ++k)
        if (!parse_ttl(toks[i + 2 + k], v[k], what[k]))
          return false;
      r.fixed.resize(20);
      for (int k = 0; k < 5; ++k)
        put32(reinterpret_cast<unsigned char*>(r.fixed.data()) + 4 * k, v[k]);
      return true;
    }
    case type::txt: {
      if (n == 0)
        return fail(e.line, "missing TXT string");
      std::string s;
      for (size_t k = i; k < toks.size(); ++k) {
        if (!decode_string(toks[k], s))
          return false;
        if (s.size() > kMaxCharString)
          return fail(toks[k].line, "TXT string longer than 255 bytes ("
                                      + std::to_string(s.size())
                                      + "); split it into several strings");
        r.fixed.push_back(static_cast<char>(s.size()));
        r.fixed += s;
        if (r.fixed.size() > 65535)
          return fail(toks[k].line, "TXT record longer than 65535 bytes");
      }
      return true;
    }
  }
  return fail(e.line, "internal error: unhandled type");
}

bool same_data(const record& a, const record& b) noexcept {
  return a.type == b.type && a.fixed == b.fixed && names_equal(a.name1, b.name1)
         && names_equal(a.name2, b.name2);
}

bool parser::add(const std::string& owner, record r, int line) {
  std::string key = owner;
  for (auto& c : key)
    c = ascii_lower(c);
  auto [it, fresh] = nodes_.try_emplace(key);
  auto& nd = it->second;
  if (fresh) {
    nd.key = key;
    nd.owner = owner;
  }
  for (auto& old : nd.records)
    if (same_data(old, r))
      return true; // RFC 2181 §5: an RRset holds no duplicates
  if (r.type == type::cname && !nd.records.empty()) {
    if (nd.cname() != nullptr)
      return fail(line, "more than one CNAME at '" + name_text(owner) + "'");
    return fail(line, "CNAME and other data at '" + name_text(owner) + "'");
  }
  if (r.type != type::cname && nd.cname() != nullptr)
    return fail(line, "CNAME and other data at '" + name_text(owner) + "'");
  if (r.type == type::soa) {
    if (have_soa_)
      return fail(line, "second SOA record (a zone has exactly one)");
    have_soa_ = true;
    soa_key_ = key;
  }
  nd.records.push_back(std::move(r));
  owners_.emplace_back(std::move(key), line);
  return true;
}

bool parser::finish() {
  if (!have_soa_)
    return fail(0, "no SOA record");
  const std::string apex_key = soa_key_;
  for (auto& [key, line] : owners_)
    if (!is_at_or_below(key, apex_key))
      return fail(line, "owner '" + name_text(key) + "' is outside the zone '"
                          + name_text(apex_key) + "'");
  // Empty non-terminals: every name between the apex and an owner. They
  // keep the case in which the first name below them spelled them.
  std::vector<std::pair<std::string, std::string>> missing; // key, owner
  for (auto& [key, nd] : nodes_) {
    size_t pos = 0;
    while (key.size() - pos > apex_key.size()) {
      pos += 1 + static_cast<unsigned char>(key[pos]);
      if (key.size() - pos <= apex_key.size())
        break;
      auto suffix = key.substr(pos);
      if (nodes_.find(suffix) == nodes_.end())
        missing.emplace_back(std::move(suffix), nd.owner.substr(pos));
    }
  }
  for (auto& [key, owner] : missing) {
    auto [it, fresh] = nodes_.try_emplace(key);
    if (fresh) {
      it->second.key = key;
      it->second.owner = owner;
    }
  }
  auto& apex = nodes_.at(apex_key);
  record soa;
  for (auto& r : apex.records)
    if (r.type == type::soa)
      soa = r;
  std::string apex_owner = apex.owner;
  // std::map orders std::string keys as std::string_view compares them,
  // which is the order zone::find searches in.
  std::vector<node> sorted;
  sorted.reserve(nodes_.size());
  for (auto& [key, nd] : nodes_)
    sorted.push_back(std::move(nd));
  zone_builder::assemble(out_.value, std::move(apex_owner), apex_key,
                         std::move(soa), std::move(sorted));
  out_.ok = true;
  return true;
}

bool parser::run(std::string_view origin) {
  if (!origin.empty()) {
    token t;
    t.text = std::string{origin};
    if (t.text.back() != '.')
      t.text.push_back('.');
    if (!parse_name(t, origin_)) {
      out_.message = "bad origin: " + out_.message;
      return false;
    }
  }
  if (!lex())
    return false;
  for (auto& e : entries_)
    if (!handle(e))
      return false;
  return finish();
}

} // namespace

zone_result parse_zone(std::string_view text,
                       std::string_view origin) noexcept {
  zone_result out;
  try {
    parser p{text, out};
    if (!p.run(origin)) {
      out.ok = false;
      out.value = zone{};
    }
  } catch (const std::bad_alloc&) {
    out = zone_result{};
    out.message = "out of memory";
  } catch (...) {
    out = zone_result{};
    out.message = "internal error while parsing the zone";
  }
  return out;
}

zone_result load_zone_file(const std::string& path,
                           std::string_view origin) noexcept {
  auto failed = [&](const char* what, int err) {
    zone_result out;
    out.message = path + ": " + what + ": " + std::strerror(err);
    return out;
  };
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused
    // below as not a regular file); it changes nothing for regular files.
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
      return failed("cannot open the zone file", errno);
    struct closer {
      int fd;
      ~closer() {
        ::close(fd);
      }
    } guard{fd}; // closes on every return, and if an allocation throws
    std::string text;
    int err = 0;
    const char* what = nullptr;
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      err = errno;
      what = "cannot read the zone file";
    } else if (S_ISDIR(st.st_mode)) {
      err = EISDIR;
      what = "cannot read the zone file";
    } else if (!S_ISREG(st.st_mode)) {
      zone_result out;
      out.message = path + ": not a regular file";
      return out;
    }
    char buf[65536];
    while (what == nullptr) {
      ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0) {
        err = errno;
        what = "cannot read the zone file";
        break;
      }
      if (n == 0)
        break;
      if (text.size() + static_cast<size_t>(n) > kMaxZoneFileSize) {
        zone_result out;
        out.message = path + ": larger than "
                      + std::to_string(kMaxZoneFileSize >> 20) + " MiB";
        return out;
      }
      text.append(buf, static_cast<size_t>(n));
    }
    if (what != nullptr)
      return failed(what, err);
    auto out = parse_zone(text, origin);
    if (!out.ok)
      out.message = path + ": " + out.message;
    return out;
  } catch (...) {
    zone_result out;
    out.message = path + ": out of memory";
    return out;
  }
}

} // namespace dns
