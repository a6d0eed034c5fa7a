// The master-file parser of the DNS example: every supported feature, and
// errors with their line numbers for bad input. Random input never crashes.

#include "examples/dns/zone.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <random>
#include <string>

#include "dns_test_util.hpp"

namespace {

using namespace dns;
using dns::test::text_of;

constexpr const char* kSoa = "@ IN SOA ns1 hostmaster 1 7200 900 1209600 300\n";

std::string wire(std::string_view text) {
  char buf[kMaxName];
  size_t n = name_from_text(text, buf);
  EXPECT_GT(n, 0u) << text;
  return std::string(buf, n);
}

const node* find(const zone& z, std::string_view name) {
  return z.find_any_case(wire(name));
}

// Records of `type` at `name`.
std::vector<record> at(const zone& z, std::string_view name, uint16_t t) {
  std::vector<record> out;
  if (auto* n = find(z, name))
    for (auto& r : n->records)
      if (r.type == t)
        out.push_back(r);
  return out;
}

zone_result parse_ok(const std::string& text, std::string_view origin = {}) {
  auto r = parse_zone(text, origin);
  EXPECT_TRUE(r.ok) << r.message << "\n--- zone:\n" << text;
  return r;
}

std::string txt_strings(const record& r) {
  std::string out;
  for (size_t p = 0; p < r.fixed.size();) {
    size_t len = static_cast<unsigned char>(r.fixed[p]);
    if (!out.empty())
      out += "|";
    out += r.fixed.substr(p + 1, len);
    p += 1 + len;
  }
  return out;
}

TEST(DnsZone, ParsesTheSampleZone) {
  auto r = load_zone_file(MAYFLY_SOURCE_DIR "/examples/dns/example.zone");
  ASSERT_TRUE(r.ok) << r.message;
  auto& z = r.value;
  EXPECT_EQ(text_of(z.apex()), "example.test.");
  EXPECT_EQ(at(z, "www.example.test", type::a).size(), 2u);
  EXPECT_EQ(at(z, "www.example.test", type::txt).size(), 1u);
  EXPECT_EQ(at(z, "example.test", type::ns).size(), 2u);
  EXPECT_EQ(at(z, "host.sub.example.test", type::a).size(), 1u);
  ASSERT_EQ(at(z, "info.example.test", type::txt).size(), 1u);
  EXPECT_EQ(txt_strings(at(z, "info.example.test", type::txt)[0]),
            "first string|second \"quoted\" string|semicolon; and backslash "
            "\\ inside|unquoted-word|ABC");
  EXPECT_EQ(at(z, "info.example.test", type::txt)[0].ttl, 300u);
  EXPECT_EQ(at(z, "long.example.test", type::txt)[0].fixed.size(), 5u * 65);
  // b.deep exists as an empty non-terminal.
  ASSERT_NE(find(z, "b.deep.example.test"), nullptr);
  EXPECT_TRUE(find(z, "b.deep.example.test")->records.empty());
}

TEST(DnsZone, OriginTtlAndAt) {
  auto r = parse_ok("$ORIGIN example.test.\n$TTL 3600\n" + std::string{kSoa}
                    + "@ NS ns1\nns1 A 192.0.2.1\n");
  auto& z = r.value;
  EXPECT_EQ(text_of(z.apex()), "example.test.");
  auto soa = z.soa();
  EXPECT_EQ(text_of(soa.name1), "ns1.example.test.");
  EXPECT_EQ(text_of(soa.name2), "hostmaster.example.test.");
  EXPECT_EQ(soa.ttl, 3600u);
  auto ns = at(z, "example.test", type::ns);
  ASSERT_EQ(ns.size(), 1u);
  EXPECT_EQ(text_of(ns[0].name1), "ns1.example.test.");
  auto a = at(z, "ns1.example.test", type::a);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].fixed, std::string("\xC0\x00\x02\x01", 4));
}

TEST(DnsZone, OriginFromTheCaller) {
  auto r = parse_ok("$TTL 60\n" + std::string{kSoa} + "www A 192.0.2.1\n",
                    "example.test");
  EXPECT_EQ(text_of(r.value.apex()), "example.test.");
  EXPECT_NE(find(r.value, "www.example.test"), nullptr);
}

TEST(DnsZone, RelativeAbsoluteAndNestedOrigins) {
  auto r = parse_ok("$ORIGIN example.test.\n$TTL 60\n" + std::string{kSoa}
                    + "a A 192.0.2.1\n"
                      "b.example.test. A 192.0.2.2\n"
                      "$ORIGIN sub\n" // relative to example.test.
                      "c A 192.0.2.3\n"
                      "@ A 192.0.2.4\n"
                      "d CNAME a.example.test.\n"
                      "e CNAME a\n");
  auto& z = r.value;
  EXPECT_EQ(at(z, "a.example.test", type::a).size(), 1u);
  EXPECT_EQ(at(z, "b.example.test", type::a).size(), 1u);
  EXPECT_EQ(at(z, "c.sub.example.test", type::a).size(), 1u);
  EXPECT_EQ(at(z, "sub.example.test", type::a).size(), 1u);
  EXPECT_EQ(text_of(at(z, "d.sub.example.test", type::cname)[0].name1),
            "a.example.test.");
  EXPECT_EQ(text_of(at(z, "e.sub.example.test", type::cname)[0].name1),
            "a.sub.example.test.");
}

TEST(DnsZone, CommentsAndParenthesesSpanningLines) {
  auto r = parse_ok("; a comment line\n"
                    "$ORIGIN example.test. ; trailing comment\n"
                    "$TTL 60\n"
                    "@ IN SOA ( ns1 ; mname\n"
                    "   hostmaster ; rname\n"
                    "\n"
                    "   42 ; serial\n"
                    "   1h 15m 2w 5m ) ; the rest\n"
                    "   ; a comment with (parentheses) and \"quotes\n"
                    "www A 192.0.2.1 ; here\n");
  auto& soa = r.value.soa();
  ASSERT_EQ(soa.fixed.size(), 20u);
  auto* f = reinterpret_cast<const unsigned char*>(soa.fixed.data());
  EXPECT_EQ(get32(f), 42u);
  EXPECT_EQ(get32(f + 4), 3600u);
  EXPECT_EQ(get32(f + 8), 900u);
  EXPECT_EQ(get32(f + 12), 1209600u);
  EXPECT_EQ(get32(f + 16), 300u);
  EXPECT_EQ(at(r.value, "www.example.test", type::a).size(), 1u);
}

TEST(DnsZone, QuotedStringsWithEscapes) {
  auto r = parse_ok("$ORIGIN example.test.\n$TTL 60\n" + std::string{kSoa}
                    + "t TXT \"a \\\"b\\\" c\" \"semi;colon\" \"back\\\\slash\""
                      " \"\\065\\066\\067\" plain \"\" \"(paren)\"\n");
  auto t = at(r.value, "t.example.test", type::txt);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(txt_strings(t[0]),
            "a \"b\" c|semi;colon|back\\slash|ABC|plain||(paren)");
}

TEST(DnsZone, EscapesInNames) {
  auto r = parse_ok("$ORIGIN example.test.\n$TTL 60\n" + std::string{kSoa}
                    + "a\\.b A 192.0.2.1\n"
                      "c\\032d A 192.0.2.2\n");
  auto& z = r.value;
  // "a.b" is one label.
  std::string one_label = std::string("\x03"
                                      "a.b",
                                      4)
                          + wire("example.test");
  EXPECT_NE(z.find_any_case(one_label), nullptr);
  EXPECT_EQ(find(z, "b.example.test"), nullptr);
  std::string spaced = std::string("\x03"
                                   "c d",
                                   4)
                       + wire("example.test");
  EXPECT_NE(z.find_any_case(spaced), nullptr);
}

TEST(DnsZone, OmittedOwnerInheritsThePreviousOne) {
  auto r = parse_ok("$ORIGIN example.test.\n$TTL 60\n" + std::string{kSoa}
                    + "www A 192.0.2.1\n"
                      "    A 192.0.2.2\n"
                      "\tAAAA 2001:db8::1\n"
                      "mail A 192.0.2.3\n"
                      "  TXT hello\n");
  auto& z = r.value;
  EXPECT_EQ(at(z, "www.example.test", type::a).size(), 2u);
  EXPECT_EQ(at(z, "www.example.test", type::aaaa).size(), 1u);
  EXPECT_EQ(at(z, "mail.example.test", type::txt).size(), 1u);
  // The SOA's NS-less apex: the records after the SOA line at "@" would
  // have inherited "@".
  EXPECT_EQ(at(z, "example.test", type::a).size(), 0u);
}

TEST(DnsZone, TtlRules) {
  // No $TTL: an omitted TTL is the last explicit one (RFC 1035).
  auto r = parse_ok("$ORIGIN example.test.\n"
                    "@ 100 IN SOA ns1 hostmaster 1 2 3 4 5\n"
                    "a A 192.0.2.1\n"
                    "b 200 A 192.0.2.2\n"
                    "c A 192.0.2.3\n");
  auto& z = r.value;
  EXPECT_EQ(z.soa().ttl, 100u);
  EXPECT_EQ(at(z, "a.example.test", type::a)[0].ttl, 100u);
  EXPECT_EQ(at(z, "b.example.test", type::a)[0].ttl, 200u);
  EXPECT_EQ(at(z, "c.example.test", type::a)[0].ttl, 200u);
  // With $TTL, an omitted TTL is $TTL.
  auto r2 = parse_ok("$ORIGIN example.test.\n$TTL 1h30m\n" + std::string{kSoa}
                     + "a 10 A 192.0.2.1\nb A 192.0.2.2\n"
                       "c 1W A 192.0.2.3\nd 2d3h4m5s A 192.0.2.4\n");
  EXPECT_EQ(r2.value.soa().ttl, 5400u);
  EXPECT_EQ(at(r2.value, "a.example.test", type::a)[0].ttl, 10u);
  EXPECT_EQ(at(r2.value, "b.example.test", type::a)[0].ttl, 5400u);
  EXPECT_EQ(at(r2.value, "c.example.test", type::a)[0].ttl, 604800u);
  EXPECT_EQ(at(r2.value, "d.example.test", type::a)[0].ttl,
            2u * 86400 + 3 * 3600 + 4 * 60 + 5);
}

TEST(DnsZone, ClassAndTtlInEitherOrderOrOmitted) {
  auto r = parse_ok("$ORIGIN example.test.\n$TTL 60\n" + std::string{kSoa}
                    + "a 10 IN A 192.0.2.1\n"
                      "b IN 20 A 192.0.2.2\n"
                      "c in a 192.0.2.3\n"
                      "d 30 A 192.0.2.4\n"
                      "e A 192.0.2.5\n");
  auto& z = r.value;
  EXPECT_EQ(at(z, "a.example.test", type::a)[0].ttl, 10u);
  EXPECT_EQ(at(z, "b.example.test", type::a)[0].ttl, 20u);
  EXPECT_EQ(at(z, "c.example.test", type::a)[0].ttl, 60u);
  EXPECT_EQ(at(z, "d.example.test", type::a)[0].ttl, 30u);
  EXPECT_EQ(at(z, "e.example.test", type::a)[0].ttl, 60u);
}

TEST(DnsZone, EveryRecordType) {
  auto r = parse_ok("$ORIGIN example.test.\n$TTL 60\n" + std::string{kSoa}
                    + "@ NS ns1\n"
                      "@ MX 10 mail.example.test.\n"
                      "a A 192.0.2.1\n"
                      "a AAAA 2001:db8::1\n"
                      "a TXT \"one\" \"two\" three\n"
                      "c CNAME a\n");
  auto& z = r.value;
  auto mx = at(z, "example.test", type::mx);
  ASSERT_EQ(mx.size(), 1u);
  EXPECT_EQ(mx[0].fixed, std::string("\x00\x0A", 2));
  EXPECT_EQ(text_of(mx[0].name1), "mail.example.test.");
  auto aaaa = at(z, "a.example.test", type::aaaa);
  ASSERT_EQ(aaaa.size(), 1u);
  EXPECT_EQ(aaaa[0].fixed.size(), 16u);
  EXPECT_EQ(static_cast<unsigned char>(aaaa[0].fixed[15]), 1);
  EXPECT_EQ(txt_strings(at(z, "a.example.test", type::txt)[0]),
            "one|two|three");
  auto* c = find(z, "c.example.test");
  ASSERT_NE(c, nullptr);
  ASSERT_NE(c->cname(), nullptr);
  EXPECT_EQ(text_of(c->cname()->name1), "a.example.test.");
  EXPECT_EQ(z.record_count(), 7u);
}

TEST(DnsZone, NamesAreCaseInsensitiveAndKeepTheirCase) {
  auto r = parse_ok("$ORIGIN Example.TEST.\n$TTL 60\n" + std::string{kSoa}
                    + "WwW A 192.0.2.1\nwww A 192.0.2.2\nwWw TXT x\n");
  auto& z = r.value;
  auto* n = find(z, "WWW.EXAMPLE.test");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->records.size(), 3u);
  EXPECT_EQ(text_of(n->owner), "WwW.Example.TEST.");
  EXPECT_EQ(text_of(n->key), "www.example.test.");
  EXPECT_EQ(text_of(z.apex()), "Example.TEST.");
  EXPECT_EQ(text_of(z.apex_key()), "example.test.");
}

TEST(DnsZone, EmptyNonTerminalsExist) {
  auto r = parse_ok("$ORIGIN example.test.\n$TTL 60\n" + std::string{kSoa}
                    + "x.y.z A 192.0.2.1\n");
  auto& z = r.value;
  ASSERT_NE(find(z, "y.z.example.test"), nullptr);
  ASSERT_NE(find(z, "z.example.test"), nullptr);
  EXPECT_TRUE(find(z, "z.example.test")->records.empty());
  EXPECT_EQ(find(z, "w.example.test"), nullptr);
  EXPECT_EQ(z.record_count(), 2u);
}

TEST(DnsZone, DuplicatesAreMerged) {
  auto r = parse_ok("$ORIGIN example.test.\n$TTL 60\n" + std::string{kSoa}
                    + "a A 192.0.2.1\na 30 A 192.0.2.1\nA.example.test. A "
                      "192.0.2.1\nc CNAME a\nc CNAME A\n");
  EXPECT_EQ(at(r.value, "a.example.test", type::a).size(), 1u);
  EXPECT_EQ(at(r.value, "c.example.test", type::cname).size(), 1u);
}

TEST(DnsZone, LimitsAtTheEdge) {
  std::string l63(63, 'a');
  // 63+1 +63+1 +63+1 +61+1 = 254 + root = 255: the longest name.
  std::string longest = l63 + "." + l63 + "." + l63 + "." + std::string(61, 'b')
                        + ".";
  std::string s255(255, 'x');
  auto r = parse_ok("$TTL 60\n"
                    "test. IN SOA ns.test. h.test. 1 2 3 4 5\n"
                    + l63
                    + ".test. A 192.0.2.1\n"
                      "t.test. TXT \""
                    + s255 + "\" \"" + s255 + "\"\n");
  EXPECT_NE(find(r.value, l63 + ".test"), nullptr);
  EXPECT_EQ(at(r.value, "t.test", type::txt)[0].fixed.size(), 2u * 256);
  auto r2 = parse_zone("$TTL 60\n. IN SOA ns. h. 1 2 3 4 5\n" + longest
                       + " A 192.0.2.1\n");
  EXPECT_TRUE(r2.ok) << r2.message;
}

struct bad_zone {
  const char* name;
  std::string text;
  int line;
  const char* message; // a part of the message
};

std::string with_soa(const std::string& rest) {
  return "$ORIGIN example.test.\n$TTL 60\n" + std::string{kSoa} + rest;
}

TEST(DnsZone, ErrorsNameTheLine) {
  std::string l64(64, 'a');
  std::string l63(63, 'a');
  std::string too_long = l63 + "." + l63 + "." + l63 + "." + l63 + ".";
  std::string s256(256, 'x');
  const bad_zone cases[] = {
    {"label > 63", with_soa(l64 + " A 192.0.2.1\n"), 4, "longer than 63"},
    {"name > 255", with_soa(too_long + " A 192.0.2.1\n"), 4, "longer than 255"},
    {"relative name > 255",
     with_soa(l63 + "." + l63 + "." + l63 + "." + l63 + " A 192.0.2.1\n"), 4,
     "longer than 255"},
    {"TXT > 255", with_soa("t TXT \"" + s256 + "\"\n"), 4,
     "TXT string longer than 255"},
    {"bad IPv4", with_soa("a A 192.0.2.256\n"), 4, "bad IPv4 address"},
    {"IPv6 in A", with_soa("a A 2001:db8::1\n"), 4, "bad IPv4 address"},
    {"bad IPv6", with_soa("a AAAA 2001:db8:::1\n"), 4, "bad IPv6 address"},
    {"unknown type", with_soa("a FOO 1\n"), 4, "unknown record type 'FOO'"},
    {"unsupported type", with_soa("a PTR x\n"), 4, "PTR is not supported"},
    {"class CH", with_soa("a CH A 192.0.2.1\n"), 4, "class CH"},
    {"missing rdata", with_soa("a A\n"), 4, "missing IPv4 address"},
    {"missing type", with_soa("a 60 IN\n"), 4, "missing record type"},
    {"trailing data", with_soa("a A 192.0.2.1 192.0.2.2\n"), 4,
     "unexpected '192.0.2.2'"},
    {"SOA short", "$ORIGIN x.\n$TTL 1\n@ SOA a b 1 2 3 4\n", 3,
     "missing SOA fields"},
    {"bad serial", "$ORIGIN x.\n$TTL 1\n@ SOA a b 1x 2 3 4 5\n", 3,
     "bad SOA serial"},
    {"bad MX", with_soa("@ MX ten mail\n"), 4, "bad MX preference"},
    {"MX preference > 65535", with_soa("@ MX 65536 mail\n"), 4,
     "MX preference out of range"},
    {"unclosed (", with_soa("a TXT ( \"x\"\n\n b A 1.2.3.4\n"), 4,
     "'(' not closed"},
    {"stray )", with_soa("a A 192.0.2.1 )\n"), 4, "')' without '('"},
    {"nested (", with_soa("a TXT ( ( x ) )\n"), 4, "nested '('"},
    {"unterminated quote", with_soa("\na TXT \"abc\nb A 192.0.2.1\n"), 5,
     "unterminated quoted string"},
    {"relative name, no origin", "$TTL 60\nwww A 192.0.2.1\n", 2,
     "with no origin"},
    {"@ without origin", "$TTL 60\n@ A 192.0.2.1\n", 2,
     "'@' used with no origin"},
    {"no TTL", "$ORIGIN x.\n@ SOA a b 1 2 3 4 5\n", 2, "no TTL"},
    {"TTL too large", with_soa("a 2147483648 A 192.0.2.1\n"), 4,
     "out of range"},
    {"TTL bad unit", with_soa("a 5x A 192.0.2.1\n"), 4, "bad TTL"},
    {"$TTL bad", "$TTL forever\n", 1, "bad TTL"},
    {"no SOA", "$ORIGIN x.\n$TTL 1\na A 192.0.2.1\n", 0, "no SOA"},
    {"two SOAs", with_soa("@ SOA ns2 h 2 1 1 1 1\n"), 4, "second SOA"},
    {"owner outside the zone", with_soa("www.example.org. A 192.0.2.1\n"), 4,
     "outside the zone"},
    {"CNAME then data", with_soa("c CNAME a\nc A 192.0.2.1\n"), 5,
     "CNAME and other data"},
    {"data then CNAME", with_soa("c A 192.0.2.1\nc CNAME a\n"), 5,
     "CNAME and other data"},
    {"two CNAMEs", with_soa("c CNAME a\nc CNAME b\n"), 5,
     "more than one CNAME"},
    {"$INCLUDE", "$INCLUDE other.zone\n", 1, "$INCLUDE is not supported"},
    {"unknown directive", "$GENERATE 1-2 a A 1.2.3.4\n", 1,
     "unknown directive"},
    {"\\DDD above 255", with_soa("a\\256 A 192.0.2.1\n"), 4, "above 255"},
    {"short \\DDD", with_soa("t TXT \"\\12\"\n"), 4, "three digits"},
    {"dangling escape", with_soa("a\\"), 4, "dangling"},
    {"empty label", with_soa("a..b A 192.0.2.1\n"), 4, "empty label"},
    {"leading dot", with_soa(".a A 192.0.2.1\n"), 4, "empty label"},
    {"no owner for the first record", "$TTL 1\n  A 192.0.2.1\n", 2,
     "no owner name"},
    {"$ORIGIN without a name", "$ORIGIN\n", 1, "exactly one name"},
  };
  for (auto& c : cases) {
    auto r = parse_zone(c.text);
    EXPECT_FALSE(r.ok) << c.name;
    EXPECT_EQ(r.line, c.line) << c.name << ": " << r.message;
    EXPECT_NE(r.message.find(c.message), std::string::npos)
      << c.name << ": got \"" << r.message << "\"";
    if (c.line > 0) {
      EXPECT_EQ(r.message.rfind("line " + std::to_string(c.line) + ": ", 0), 0u)
        << c.name << ": " << r.message;
    }
    EXPECT_TRUE(r.value.nodes().empty()) << c.name;
  }
}

TEST(DnsZone, MissingFileIsAnErrorValue) {
  auto r = load_zone_file("/nonexistent/dir/zone.file");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.line, 0);
  EXPECT_NE(r.message.find("/nonexistent/dir/zone.file"), std::string::npos);
}

// A directory, a device or an unreadable file given as the zone: the
// message names the path and the OS's reason, never "no SOA record"
// (issue 18: `--zone DIR` said "no SOA record").
TEST(DnsZone, ZonePathThatIsADirectoryNamesPathAndOsError) {
  auto r = load_zone_file("/tmp");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.line, 0);
  EXPECT_EQ(r.message, "/tmp: cannot read the zone file: Is a directory");
  EXPECT_TRUE(r.value.nodes().empty());

  r = load_zone_file("/nonexistent/dir/zone.file");
  EXPECT_EQ(r.message, "/nonexistent/dir/zone.file: cannot open the zone "
                       "file: No such file or directory");

  r = load_zone_file("/dev/null");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.message, "/dev/null: not a regular file");

  // A FIFO: refused at once, without waiting for a writer.
  std::string fifo = ::testing::TempDir() + "dns_zone_fifo";
  ::unlink(fifo.c_str());
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  r = load_zone_file(fifo);
  EXPECT_EQ(r.message, fifo + ": not a regular file");
  ::unlink(fifo.c_str());

  // Unreadable: only observable when not running as root.
  if (::geteuid() != 0) {
    std::string path = ::testing::TempDir() + "dns_zone_unreadable";
    FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fclose(f);
    ASSERT_EQ(::chmod(path.c_str(), 0), 0);
    r = load_zone_file(path);
    EXPECT_EQ(r.message,
              path + ": cannot open the zone file: Permission denied");
    ::unlink(path.c_str());
  }
}

TEST(DnsZone, EmptyAndBlankInputs) {
  for (const char* text : {"", "\n", "   \n\t\n", "; only a comment\n", "()"}) {
    auto r = parse_zone(text);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.message, "no SOA record") << "input: " << text;
  }
}

// Random token soup and random bytes: the parser answers, never crashes
// (ASan/UBSan watch in the dev preset). Bounded: a fixed number of inputs.
TEST(DnsZone, RandomInputNeverCrashes) {
  const char* vocab[] = {
    "$ORIGIN", "$TTL",       "example.test.",
    "@",       "www",        "IN",
    "CH",      "SOA",        "NS",
    "A",       "AAAA",       "TXT",
    "CNAME",   "MX",         "3600",
    "1h",      "(",          ")",
    ";c",      "\"q s\"",    "\"\\",
    "\\0",     "\\\\",       "192.0.2.1",
    "::1",     "\n",         "\n ",
    " ",       "\t",         "a.b",
    "..",      ".",          "\"",
    "\\256",   "9999999999",
  };
  std::mt19937 gen{12345};
  int parsed = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string text;
    if (i % 3 == 0) {
      text = with_soa("");
    }
    int n = static_cast<int>(gen() % 40);
    for (int k = 0; k < n; ++k) {
      if (gen() % 10 == 0) {
        text.push_back(static_cast<char>(gen()));
      } else {
        text += vocab[gen() % std::size(vocab)];
        text += ' ';
      }
    }
    auto r = parse_zone(text);
    if (r.ok) {
      ++parsed;
      EXPECT_NE(r.value.find(r.value.apex_key()), nullptr);
    } else {
      EXPECT_FALSE(r.message.empty());
    }
  }
  EXPECT_GT(parsed, 0); // some soups are valid zones
}

} // namespace
