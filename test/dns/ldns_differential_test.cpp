// Differential test against ldns (libldns, tests and benchmarks only): a corpus of generated
// queries and responses, plus mutations of each, goes through both parsers. They must agree on
// accept/reject and, when both accept, on every field the codec exposes. The only
// disagreements allowed are the ones listed below, each for a stated reason.
#include <gtest/gtest.h>
#include <ldns/ldns.h>

#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "dns/message.h"
#include "dns/wire_name.h"
#include "test/dns/packet_builder.h"

namespace dnsproxy::dns {
namespace {

using testing::PacketBuilder;

// Where the codec is deliberately stricter than ldns: it rejects, ldns accepts.
const std::map<ParseError, std::string_view> kStricterThanLdns = {
    {ParseError::kQdcountNotOne, "policy needs exactly one name; ldns takes any QDCOUNT"},
    {ParseError::kOpcodeNotQuery, "only QUERY is a lookup the policy can judge"},
    {ParseError::kTrailingBytes,
     "bytes after the last record could be read differently by the server; ldns ignores them"},
    {ParseError::kPointerIntoHeader, "a name never lives in the header; ldns follows it"},
    {ParseError::kForwardPointer,
     "RFC 1035 pointers refer to a prior occurrence; ldns follows forward pointers"},
    {ParseError::kPointerLoop,
     "a pointer back into the part of the name it came from either loops (ldns rejects those "
     "too) or lands inside a label (ldns follows it); one rule for both keeps loops impossible"},
    {ParseError::kTooManyPointers, "16 hops bound the work; ldns allows far more"},
    {ParseError::kBadAddressLength, "an A/AAAA of the wrong size is not an address"},
    {ParseError::kBadCnameRdata, "a CNAME with bytes after its name; ldns ignores them"},
    {ParseError::kOptNotInAdditional, "RFC 6891 6.1.1: OPT only in the additional section"},
    {ParseError::kOptOwnerNotRoot, "RFC 6891 6.1.2: the OPT owner is the root"},
    {ParseError::kDuplicateOpt, "RFC 6891 6.1.1: at most one OPT; ldns keeps the last"},
};

// ldns reads only the fixed size of an A/AAAA RDATA and takes any extra RDLENGTH bytes as the
// start of the next record; the codec follows RDLENGTH (RFC 1035 4.1.3; for class IN it rejects
// such a record, kBadAddressLength). The two then read different records from the rest of the
// packet and may disagree on anything after it. True if the packet has such a record before
// the point where the codec stopped.
bool has_oversized_address(std::span<const uint8_t> wire) {
  if (wire.size() < kHeaderSize) return false;
  const ConstHeaderBytes h = header_of(wire);
  NameScan name = scan_name(wire, kHeaderSize);
  if (!name.ok()) return false;
  size_t at = name.end + 4u;
  const unsigned records = ancount(h) + nscount(h) + arcount(h);
  for (unsigned i = 0; i < records && at < wire.size(); ++i) {
    name = scan_name(wire, at);
    if (!name.ok() || name.end + 10u > wire.size()) return false;
    const uint16_t type = load_u16(&wire[name.end]);
    const uint16_t rdlength = load_u16(&wire[name.end + 8]);
    if ((type == 1 && rdlength > 4) || (type == 28 && rdlength > 16)) return true;
    at = name.end + 10u + rdlength;
  }
  return false;
}

// Where the codec is deliberately more lenient: it accepts, ldns rejects. RDATA of types the
// codec does not expose (anything but A, AAAA, CNAME, OPT) is opaque to it: the proxy forwards
// it untouched, so it has no business judging its syntax.
bool has_opaque_record(std::span<const uint8_t> wire, const Message& message) {
  size_t at = message.question_end;
  const ConstHeaderBytes h = message.header();
  const unsigned records = ancount(h) + nscount(h) + arcount(h);
  for (unsigned i = 0; i < records; ++i) {
    const size_t fixed = skip_name(wire, at);
    const uint16_t type = load_u16(&wire[fixed]);
    const uint16_t rclass = load_u16(&wire[fixed + 2]);
    const bool exposed =
        type == 5 || type == 41 || (rclass == kClassIn && (type == 1 || type == 28));
    if (!exposed) return true;
    at = fixed + 10 + load_u16(&wire[fixed + 8]);
  }
  return false;
}

// ---- The generator ----------------------------------------------------------------------------

class Generator {
 public:
  explicit Generator(uint32_t seed) : rng_(seed) {}

  std::vector<uint8_t> query() {
    PacketBuilder p;
    names_.clear();
    const bool edns = chance(0.7);
    p.header(id(), static_cast<uint8_t>(chance(0.9) ? 0x01 : 0x00),
             static_cast<uint8_t>(chance(0.2) ? 0x30 : 0x00), 1, 0, 0, edns ? 1 : 0);
    write_name(p, random_name());
    p.question(random_qtype(), chance(0.95) ? 1 : 3);
    if (edns) p.opt(pick<uint16_t>({512, 1232, 1400, 4096, 65535}), chance(0.5));
    return p.bytes();
  }

  // A CNAME chain of 0-3 links from the question name, then 0-4 addresses, sometimes records
  // for unrelated names, glue in the additional section, and an OPT.
  std::vector<uint8_t> response() {
    PacketBuilder p;
    names_.clear();
    const auto qname = random_name();
    const unsigned links = uniform(0, 3), addresses = uniform(0, 4), unrelated = uniform(0, 1);
    const unsigned glue = uniform(0, 2);
    const bool edns = chance(0.6);
    p.header(id(), 0x81, pick<uint8_t>({0x80, 0x80, 0x83, 0x82, 0x85}), 1,
             static_cast<uint16_t>(links + addresses + unrelated), 0,
             static_cast<uint16_t>(glue + (edns ? 1 : 0)));
    write_name(p, qname);
    p.question(chance(0.5) ? 1 : 28);
    auto owner = qname;
    for (unsigned i = 0; i < links; ++i) {
      const auto target = chance(0.5) ? random_name() : with_new_first_label(owner);
      write_name(p, owner);
      write_rdata_name(p, 5, ttl(), target);
      owner = target;
    }
    for (unsigned i = 0; i < addresses; ++i) write_address(p, owner);
    for (unsigned i = 0; i < unrelated; ++i) write_address(p, random_name());
    for (unsigned i = 0; i < glue; ++i) write_address(p, random_name());
    if (edns) p.opt(pick<uint16_t>({512, 1232, 4096}), chance(0.3), pick<uint8_t>({0, 0, 0, 1}));
    return p.bytes();
  }

  // Truncations, byte flips, count changes and trailing bytes.
  std::vector<uint8_t> mutate(std::vector<uint8_t> packet) {
    switch (uniform(0, 4)) {
      case 0:
        packet.resize(uniform(0, static_cast<unsigned>(packet.size())));
        break;
      case 1:
      case 2:
        for (unsigned n = uniform(1, 3); n > 0 && !packet.empty(); --n)
          packet[uniform(0, static_cast<unsigned>(packet.size() - 1))] =
              static_cast<uint8_t>(uniform(0, 255));
        break;
      case 3:
        if (packet.size() >= kHeaderSize)
          packet[uniform(4, 11)] ^= static_cast<uint8_t>(uniform(1, 3));
        break;
      default:
        for (unsigned n = uniform(1, 8); n > 0; --n)
          packet.push_back(static_cast<uint8_t>(uniform(0, 255)));
    }
    return packet;
  }

 private:
  using Name = std::vector<std::string>;

  unsigned uniform(unsigned low, unsigned high) {
    return std::uniform_int_distribution<unsigned>(low, high)(rng_);
  }
  bool chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  template <class T>
  T pick(std::initializer_list<T> values) {
    return values.begin()[uniform(0, static_cast<unsigned>(values.size() - 1))];
  }
  uint16_t id() { return static_cast<uint16_t>(uniform(0, 65535)); }
  uint32_t ttl() { return chance(0.05) ? 0x80000000u + uniform(0, 9) : uniform(0, 86400); }
  uint16_t random_qtype() { return pick<uint16_t>({1, 28, 5, 15, 16, 65, 255, 1, 28}); }

  std::string random_label() {
    static constexpr std::string_view kCommon =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
    const unsigned length = chance(0.05) ? uniform(40, 63) : uniform(1, 12);
    std::string label;
    for (unsigned i = 0; i < length; ++i) {
      if (chance(0.03))
        label += static_cast<char>(pick<uint8_t>({'.', '\\', ' ', '"', 0x00, 0xff, 0x7f}));
      else
        label += kCommon[uniform(0, static_cast<unsigned>(kCommon.size() - 1))];
    }
    return label;
  }
  Name random_name() {
    Name name;
    const unsigned labels = uniform(0, 5);
    size_t wire = 1;
    for (unsigned i = 0; i < labels; ++i) {
      auto label = random_label();
      if (wire + 1 + label.size() > kMaxNameWireLength) break;
      wire += 1 + label.size();
      name.push_back(std::move(label));
    }
    return name;
  }
  Name with_new_first_label(const Name& name) {
    Name longer = name;
    longer.insert(longer.begin(), random_label());
    size_t wire = 1;
    for (const auto& l : longer) wire += 1 + l.size();
    return wire <= kMaxNameWireLength ? longer : name;
  }

  // Writes `name`, pointing at the longest suffix written before (most of the time), the way
  // servers compress.
  void write_name(PacketBuilder& p, const Name& name) {
    const bool compress = chance(0.9);
    for (size_t i = 0; i < name.size(); ++i) {
      const Name suffix(name.begin() + static_cast<long>(i), name.end());
      if (compress) {
        if (auto found = names_.find(suffix); found != names_.end()) {
          p.pointer(found->second);
          return;
        }
      }
      if (p.here() < 0x3fff) names_.emplace(suffix, p.here());
      p.u8(static_cast<uint8_t>(name[i].size())).raw(name[i]);
    }
    p.u8(0);
  }
  void write_rdata_name(PacketBuilder& p, uint16_t type, uint32_t ttl_value, const Name& name) {
    p.fixed(type, 1, ttl_value, 0);
    const uint16_t length_at = static_cast<uint16_t>(p.here() - 2);
    const uint16_t start = p.here();
    write_name(p, name);
    const uint16_t length = static_cast<uint16_t>(p.here() - start);
    p.bytes()[length_at] = static_cast<uint8_t>(length >> 8);
    p.bytes()[length_at + 1] = static_cast<uint8_t>(length);
  }
  void write_address(PacketBuilder& p, const Name& owner) {
    write_name(p, owner);
    if (chance(0.5)) {
      p.fixed(1, 1, ttl(), 4).u32(static_cast<uint32_t>(rng_()));
    } else {
      p.fixed(28, 1, ttl(), 16);
      for (int i = 0; i < 4; ++i) p.u32(static_cast<uint32_t>(rng_()));
    }
  }

  std::mt19937 rng_;
  std::map<Name, uint16_t> names_;
};

// ---- Comparison -------------------------------------------------------------------------------

struct LdnsPacketDeleter {
  void operator()(ldns_pkt* packet) const { ldns_pkt_free(packet); }
};
using LdnsPacket = std::unique_ptr<ldns_pkt, LdnsPacketDeleter>;

LdnsPacket ldns_parse(const std::vector<uint8_t>& wire) {
  ldns_pkt* packet = nullptr;
  if (ldns_wire2pkt(&packet, wire.data(), wire.size()) != LDNS_STATUS_OK) {
    ldns_pkt_free(packet);
    return nullptr;
  }
  return LdnsPacket(packet);
}

std::string bytes_of(const ldns_rdf* rdf) {
  return std::string(reinterpret_cast<const char*>(ldns_rdf_data(rdf)), ldns_rdf_size(rdf));
}
std::string name_at(std::span<const uint8_t> wire, size_t offset) {
  std::array<uint8_t, kMaxNameWireLength> out{};
  const size_t length = copy_name(wire, offset, out);
  return std::string(out.begin(), out.begin() + length);
}

// Every field the codec exposes, compared with ldns's view of the same packet.
void expect_same_fields(const std::vector<uint8_t>& wire, const Message& message,
                        const ldns_pkt* ldns) {
  const ConstHeaderBytes h = message.header();
  EXPECT_EQ(message.id(), ldns_pkt_id(ldns));
  EXPECT_EQ(message.is_response(), ldns_pkt_qr(ldns));
  EXPECT_EQ(opcode(h), ldns_pkt_get_opcode(ldns));
  EXPECT_EQ(aa(h), ldns_pkt_aa(ldns));
  EXPECT_EQ(tc(h), ldns_pkt_tc(ldns));
  EXPECT_EQ(rd(h), ldns_pkt_rd(ldns));
  EXPECT_EQ(ra(h), ldns_pkt_ra(ldns));
  EXPECT_EQ(ad(h), ldns_pkt_ad(ldns));
  EXPECT_EQ(cd(h), ldns_pkt_cd(ldns));
  EXPECT_EQ(message.rcode(), ldns_pkt_edns_extended_rcode(ldns) << 4 | ldns_pkt_get_rcode(ldns));

  const ldns_rr* question = ldns_rr_list_rr(ldns_pkt_question(ldns), 0);
  EXPECT_EQ(name_at(wire, message.question.name_offset), bytes_of(ldns_rr_owner(question)));
  EXPECT_EQ(message.question.qtype, ldns_rr_get_type(question));
  EXPECT_EQ(message.question.qclass, ldns_rr_get_class(question));

  EXPECT_EQ(message.edns.present, ldns_pkt_edns(ldns));
  if (message.edns.present) {
    EXPECT_EQ(message.edns.udp_payload_size, ldns_pkt_edns_udp_size(ldns));
    EXPECT_EQ(message.edns.version, ldns_pkt_edns_version(ldns));
    EXPECT_EQ(message.edns.dnssec_ok, ldns_pkt_edns_do(ldns));
  }

  // The walk yields ldns's answer records of types A (IN), AAAA (IN) and CNAME, in order.
  const ldns_rr_list* answers = ldns_pkt_answer(ldns);
  AnswerWalk walk(message);
  AnswerRecord record;
  for (size_t i = 0; i < ldns_rr_list_rr_count(answers); ++i) {
    const ldns_rr* rr = ldns_rr_list_rr(answers, i);
    const auto type = ldns_rr_get_type(rr);
    const bool yielded =
        type == LDNS_RR_TYPE_CNAME || (ldns_rr_get_class(rr) == LDNS_RR_CLASS_IN &&
                                       (type == LDNS_RR_TYPE_A || type == LDNS_RR_TYPE_AAAA));
    if (!yielded) continue;
    ASSERT_TRUE(walk.next(record)) << "answer " << i;
    EXPECT_EQ(static_cast<uint16_t>(record.type), type);
    EXPECT_EQ(name_at(wire, record.owner_offset), bytes_of(ldns_rr_owner(rr)));
    EXPECT_EQ(record.ttl, ldns_rr_ttl(rr));
    const std::string data = record.type == RecordType::kCname
                                 ? name_at(wire, record.rdata_offset)
                                 : std::string(record.rdata.begin(), record.rdata.end());
    EXPECT_EQ(data, bytes_of(ldns_rr_rdf(rr, 0)));
  }
  EXPECT_FALSE(walk.next(record)) << "the codec yields more answers than ldns";
}

std::string hex_of(const std::vector<uint8_t>& wire) {
  std::string hex;
  char digits[3];
  for (const uint8_t b : wire) {
    std::snprintf(digits, sizeof digits, "%02x", b);
    hex += digits;
  }
  return hex;
}

struct Tally {
  unsigned both_accept = 0, both_reject = 0, stricter = 0, lenient = 0;
  std::map<ParseError, unsigned> stricter_by_reason;
};

// Returns whether both accepted.
bool compare(const std::vector<uint8_t>& wire, Tally& tally) {
  const auto message = parse_message(wire);
  const LdnsPacket ldns = ldns_parse(wire);
  if (message && ldns) {
    ++tally.both_accept;
    SCOPED_TRACE(hex_of(wire));
    expect_same_fields(wire, *message, ldns.get());
    return true;
  }
  if (!message && !ldns) {
    ++tally.both_reject;
  } else if (!message) {
    ++tally.stricter;
    ++tally.stricter_by_reason[message.error()];
    EXPECT_TRUE(kStricterThanLdns.count(message.error()) || has_oversized_address(wire))
        << "codec rejects (" << to_string(message.error())
        << "), ldns accepts, not listed: " << hex_of(wire);
  } else {
    ++tally.lenient;
    EXPECT_TRUE(has_opaque_record(wire, *message) || has_oversized_address(wire))
        << "codec accepts, ldns rejects: " << hex_of(wire);
  }
  return false;
}

TEST(LdnsDifferentialTest, GeneratedQueriesAndResponsesAndTheirMutations) {
  Generator generator(20261123);
  Tally tally;
  constexpr int kPackets = 20000;
  for (int i = 0; i < kPackets && !HasFailure(); ++i) {
    const auto packet = i % 2 ? generator.response() : generator.query();
    EXPECT_TRUE(compare(packet, tally)) << "generated packets are valid: " << hex_of(packet);
    for (int m = 0; m < 4; ++m) compare(generator.mutate(packet), tally);
  }
  std::string stricter;
  for (const auto& [reason, count] : tally.stricter_by_reason)
    stricter += " " + std::string(to_string(reason)) + "=" + std::to_string(count);
  std::printf("both accept %u, both reject %u, codec stricter %u (%s ), codec more lenient %u\n",
              tally.both_accept, tally.both_reject, tally.stricter, stricter.c_str(),
              tally.lenient);
}

// scan_name with the parser's KnownNames (pointers to names, and into names, checked before)
// against the full walk of every name, on the same corpus: the shortcut must never change an
// answer. Names are visited in the parser's order (question, then each record's owner and
// CNAME target) until the first rejection.
void expect_known_names_shortcut_agrees(const std::vector<uint8_t>& packet) {
  SCOPED_TRACE(hex_of(packet));
  const std::span<const uint8_t> wire(packet);
  KnownNames known;
  auto agree = [&](size_t offset) {
    const NameScan shortcut = scan_name(wire, offset, &known);
    const NameScan full = scan_name(wire, offset);
    EXPECT_EQ(shortcut.error, full.error) << "at " << offset;
    if (shortcut.ok() && full.ok()) {
      EXPECT_EQ(shortcut.end, full.end) << "at " << offset;
      EXPECT_EQ(shortcut.wire_length, full.wire_length) << "at " << offset;
    }
    return shortcut.ok() && full.ok() ? shortcut.end : size_t{0};
  };
  if (wire.size() < kHeaderSize) return;
  const ConstHeaderBytes h = header_of(wire);
  const size_t question_name_end = agree(kHeaderSize);
  if (question_name_end == 0) return;
  size_t at = question_name_end + 4;
  const unsigned records = ancount(h) + nscount(h) + arcount(h);
  for (unsigned i = 0; i < records && at < wire.size(); ++i) {
    const size_t fixed = wire[at] == 0 ? at + 1 : agree(at);
    if (fixed == 0 || fixed + 10 > wire.size()) return;
    const size_t rdata_end = fixed + 10 + load_u16(&wire[fixed + 8]);
    if (rdata_end > wire.size()) return;
    if (load_u16(&wire[fixed]) == static_cast<uint16_t>(RecordType::kCname) &&
        agree(fixed + 10) != rdata_end)
      return;
    at = rdata_end;
  }
}

TEST(LdnsDifferentialTest, KnownNamesShortcutAgreesWithTheFullWalk) {
  Generator generator(20261124);
  for (int i = 0; i < 20000 && !HasFailure(); ++i) {
    const auto packet = i % 2 ? generator.response() : generator.query();
    expect_known_names_shortcut_agrees(packet);
    for (int m = 0; m < 4; ++m) expect_known_names_shortcut_agrees(generator.mutate(packet));
  }
}

// The listed stricter cases, one crafted packet each, so every entry is exercised.
TEST(LdnsDifferentialTest, EachDeliberatelyStricterCase) {
  using namespace std::string_literals;
  std::map<ParseError, std::vector<uint8_t>> cases;
  auto query = [](uint16_t qd, uint8_t flags1) {
    PacketBuilder p;
    p.header(1, flags1, 0, qd, 0, 0, 0);
    return p;
  };
  {
    auto p = query(2, 1);
    p.name("a.example").question(1).name("b.example").question(1);
    cases[ParseError::kQdcountNotOne] = p.bytes();
  }
  {
    auto p = query(1, 5 << 3);
    p.name("a.example").question(6);
    cases[ParseError::kOpcodeNotQuery] = p.bytes();
  }
  {
    auto p = query(1, 1);
    p.name("a.example").question(1).u8(0);
    cases[ParseError::kTrailingBytes] = p.bytes();
  }
  auto answer_with = [](auto&& write) {
    PacketBuilder p;
    p.header(1, 0x81, 0, 1, 1, 0, 0).name("a.example").question(1);
    write(p);
    return p.bytes();
  };
  cases[ParseError::kPointerIntoHeader] =
      answer_with([](PacketBuilder& p) { p.pointer(4).fixed(1, 1, 1, 4).u32(1); });
  cases[ParseError::kForwardPointer] = answer_with([](PacketBuilder& p) {
    p.pointer(static_cast<uint16_t>(p.here() + 16)).fixed(1, 1, 1, 4).u32(1).name("b");
  });
  cases[ParseError::kBadAddressLength] =
      answer_with([](PacketBuilder& p) { p.pointer(12).fixed(1, 1, 1, 5).u32(1).u8(0); });
  cases[ParseError::kBadCnameRdata] =
      answer_with([](PacketBuilder& p) { p.pointer(12).fixed(5, 1, 1, 4).raw("\1b\0\0"s); });
  cases[ParseError::kOptNotInAdditional] = answer_with([](PacketBuilder& p) { p.opt(); });
  {
    PacketBuilder p;
    p.header(1, 0x01, 0, 1, 0, 0, 2).name("a.example").question(1).opt(512).opt(4096);
    cases[ParseError::kDuplicateOpt] = p.bytes();
  }
  // A pointer back into the name's own label "x\0y", at the 0 byte: not an endless loop (the
  // name is "x\000y."), but the codec's rule rejects every pointer into the current part.
  cases[ParseError::kPointerLoop] = answer_with([](PacketBuilder& p) {
    const uint16_t start = p.here();
    p.raw("\3x\0y"s).pointer(static_cast<uint16_t>(start + 2)).fixed(1, 1, 1, 4).u32(1);
  });
  // Owners pointing at the previous owner, one hop deeper than the codec allows.
  cases[ParseError::kTooManyPointers] =
      testing::records_with_pointer_depth(kMaxCompressionHops + 1);
  {
    PacketBuilder p;
    p.header(1, 0x01, 0, 1, 0, 0, 1).name("a.example").question(1);
    p.pointer(12).fixed(41, 512, 0, 0);
    cases[ParseError::kOptOwnerNotRoot] = p.bytes();
  }
  ASSERT_EQ(cases.size(), kStricterThanLdns.size()) << "one crafted packet per listed case";
  for (const auto& [reason, packet] : cases) {
    EXPECT_TRUE(kStricterThanLdns.count(reason)) << to_string(reason);
    const auto message = parse_message(packet);
    ASSERT_FALSE(message) << to_string(reason);
    EXPECT_EQ(message.error(), reason);
    EXPECT_NE(ldns_parse(packet), nullptr) << to_string(reason) << ": ldns rejects it too";
  }
}

}  // namespace
}  // namespace dnsproxy::dns
