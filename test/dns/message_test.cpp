// The parser and the answer walk on well-formed and malformed packets.
#include "dns/message.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "dns/wire_name.h"
#include "test/dns/packet_builder.h"

namespace dnsproxy::dns {
namespace {

using testing::chain_response;
using testing::kFlagsQuery;
using testing::kFlagsResponse;
using testing::PacketBuilder;
using testing::records_with_pointer_depth;
using testing::typical_query;

ParseError error_of(const std::vector<uint8_t>& packet) {
  const auto message = parse_message(packet);
  return message ? ParseError::kCount : message.error();
}

std::string question_name(const Message& message) {
  std::array<uint8_t, kMaxNameWireLength> out{};
  const size_t length = copy_question_name(message, out);
  return std::string(out.begin(), out.begin() + length);
}

// A query header with QDCOUNT 1 followed by one question for `name_bytes` (raw wire bytes).
std::vector<uint8_t> query_with_raw_name(std::string_view name_bytes) {
  PacketBuilder p;
  p.header(1, kFlagsQuery, 0, 1, 0, 0, 0).raw(name_bytes).question(1);
  return p.bytes();
}

TEST(MessageTest, ParsesATypicalQuery) {
  const auto packet = typical_query();
  const auto message = parse_query(packet);
  ASSERT_TRUE(message) << to_string(message.error());
  EXPECT_EQ(message->id(), 0x1234);
  EXPECT_FALSE(message->is_response());
  EXPECT_TRUE(rd(message->header()));
  EXPECT_EQ(message->question.qtype, 1);
  EXPECT_EQ(message->question.qclass, 1);
  EXPECT_EQ(message->question.name_wire_length, 17);
  EXPECT_EQ(question_name(*message), std::string("\3www\7example\3com\0", 17));
  EXPECT_TRUE(message->edns.present);
  EXPECT_TRUE(message->edns.dnssec_ok);
  EXPECT_EQ(message->edns.udp_payload_size, 1232);
  EXPECT_EQ(message->edns.version, 0);
  EXPECT_EQ(message->rcode(), 0);
}

TEST(MessageTest, ReadsAndWritesHeaderFieldsInPlace) {
  auto packet = typical_query();
  const HeaderBytes h = header_of(std::span<uint8_t>(packet));
  set_id(h, 0xabcd);
  set_flag(h, header::kFlags1Offset, header::kQrMask, true);
  set_flag(h, header::kFlags2Offset, header::kRaMask, true);
  set_header_rcode(h, 3);
  EXPECT_EQ(id(h), 0xabcd);
  EXPECT_TRUE(qr(h));
  EXPECT_TRUE(ra(h));
  EXPECT_TRUE(rd(h));
  EXPECT_FALSE(tc(h));
  EXPECT_EQ(header_rcode(h), 3);
  EXPECT_EQ(opcode(h), 0);
  EXPECT_EQ(packet[0], 0xab);
  EXPECT_EQ(packet[2], 0x81);
  EXPECT_EQ(packet[3], 0x83);
}

TEST(MessageTest, QrMustMatchTheDirection) {
  const auto query = typical_query();
  const auto response = chain_response();
  EXPECT_EQ(parse_response(query).error(), ParseError::kNotAResponse);
  EXPECT_EQ(parse_query(response).error(), ParseError::kNotAQuery);
  EXPECT_TRUE(parse_response(response));
}

TEST(MessageTest, LabelWithADotIsOneLabel) {
  const auto one_packet = typical_query("a\\.b.example");
  const auto two_packet = typical_query("a.b.example");
  const auto one_label = parse_message(one_packet);
  const auto two_labels = parse_message(two_packet);
  ASSERT_TRUE(one_label && two_labels);
  EXPECT_EQ(question_name(*one_label), std::string("\3a.b\7example\0", 13));
  EXPECT_EQ(question_name(*two_labels), std::string("\1a\1b\7example\0", 13));
}

TEST(MessageTest, WalksACnameChainWithTheMinimumTtlPerAddress) {
  const auto packet = chain_response();
  const auto message = parse_response(packet);
  ASSERT_TRUE(message) << to_string(message.error());
  AnswerWalk walk(*message);
  AnswerRecord record;
  struct Expected {
    RecordType type;
    uint32_t ttl;
    uint32_t chain_ttl;
  };
  const Expected expected[] = {
      {RecordType::kCname, 300, 300}, {RecordType::kCname, 120, 120}, {RecordType::kA, 60, 60},
      {RecordType::kA, 600, 120},     {RecordType::kAaaa, 30, 30},    {RecordType::kAaaa, 600, 120},
  };
  for (const Expected& e : expected) {
    ASSERT_TRUE(walk.next(record));
    EXPECT_EQ(record.type, e.type);
    EXPECT_EQ(record.ttl, e.ttl);
    EXPECT_TRUE(record.on_chain);
    EXPECT_EQ(record.chain_ttl, e.chain_ttl);
  }
  EXPECT_FALSE(walk.next(record));
  // The first A: 203.0.113.1.
  AnswerWalk again(*message);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(again.next(record));
  EXPECT_EQ(std::vector<uint8_t>(record.rdata.begin(), record.rdata.end()),
            (std::vector<uint8_t>{203, 0, 113, 1}));
}

TEST(MessageTest, AddressesOffTheChainAreMarkedAndOtherTypesSkipped) {
  using namespace std::string_literals;
  PacketBuilder p;
  p.header(7, kFlagsResponse, 0x80, 1, 4, 0, 0).name("WWW.example.com").question(1);
  p.name("www.EXAMPLE.com").fixed(1, 1, 50, 4).u32(0xcb007101);      // on chain, other case
  p.name("evil.example").fixed(1, 1, 10, 4).u32(0xcb007163);         // not for the question
  p.name("www.example.com").fixed(16, 1, 10, 2).u16(0x0161);         // TXT: skipped
  p.name("www.example.com").fixed(1, 3, 10, 6).raw("\1a\0\0\0\0"s);  // class CH A: skipped
  const auto message = parse_response(p.bytes());                    // p outlives message
  ASSERT_TRUE(message) << to_string(message.error());
  AnswerWalk walk(*message);
  AnswerRecord record;
  ASSERT_TRUE(walk.next(record));
  EXPECT_TRUE(record.on_chain);
  EXPECT_EQ(record.chain_ttl, 50u);
  ASSERT_TRUE(walk.next(record));
  EXPECT_FALSE(record.on_chain);
  EXPECT_FALSE(walk.next(record));
}

// The chain is followed in answer order; names compare case-insensitively even when written
// out in full rather than compressed.
TEST(MessageTest, ChainFollowsAnswerOrderWithUncompressedNamesInAnyCase) {
  PacketBuilder p;
  p.header(7, kFlagsResponse, 0x80, 1, 4, 0, 0).name("a.example").question(1);
  p.name("target.EXAMPLE").fixed(1, 1, 5, 4).u32(0xcb007109);  // before its CNAME: off chain
  p.name("A.Example").fixed(5, 1, 100, 16).name("TARGET.example");
  p.name("target.example").fixed(1, 1, 200, 4).u32(0xcb007101);  // on chain, TTL 100
  p.name("a.example").fixed(1, 1, 50, 4).u32(0xcb007102);        // the chain moved on: off chain
  const auto message = parse_response(p.bytes());
  ASSERT_TRUE(message) << to_string(message.error());
  AnswerWalk walk(*message);
  AnswerRecord record;
  const bool expected_on_chain[] = {false, true, true, false};
  for (const bool on_chain : expected_on_chain) {
    ASSERT_TRUE(walk.next(record));
    EXPECT_EQ(record.on_chain, on_chain);
  }
  EXPECT_EQ(record.chain_ttl, 0u);
  AnswerWalk again(*message);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(again.next(record));
  EXPECT_EQ(record.chain_ttl, 100u);
  EXPECT_FALSE(walk.next(record));
}

// The walk settles a pointer straight at the chain name by the pointer alone; a pointer to
// another copy of the name, or to any other name, is compared in full.
TEST(MessageTest, ChainTestFollowsPointersToCopiesOfTheChainName) {
  PacketBuilder p;
  p.header(7, kFlagsResponse, 0x80, 1, 5, 0, 0).name("a.example").question(1);
  p.pointer(12).fixed(5, 1, 100, 11).name("b.example");  // the chain name, at its RDATA
  const uint16_t copy = p.here();
  p.name("B.Example").fixed(1, 1, 90, 4).u32(0xcb007101);  // an uncompressed copy: on chain
  p.pointer(copy).fixed(1, 1, 80, 4).u32(0xcb007102);      // pointer to the copy: on chain
  p.pointer(copy + 2).fixed(1, 1, 70, 4).u32(0xcb007103);  // "example": off chain
  p.pointer(12).fixed(1, 1, 60, 4).u32(0xcb007104);        // the chain moved on: off chain
  const auto message = parse_response(p.bytes());          // p outlives message
  ASSERT_TRUE(message) << to_string(message.error());
  AnswerWalk walk(*message);
  AnswerRecord record;
  const bool expected_on_chain[] = {true, true, true, false, false};
  for (const bool on_chain : expected_on_chain) {
    ASSERT_TRUE(walk.next(record));
    EXPECT_EQ(record.on_chain, on_chain) << record.owner_offset;
  }
  EXPECT_FALSE(walk.next(record));
}

// A chain name beyond offset 0x3fff cannot be reached by a pointer, and a pointer whose 14 bits
// equal its low bits names something else: the walk must not take it for the chain name.
TEST(MessageTest, ChainNameBeyondPointerReachIsNotMistakenForAPointer) {
  constexpr uint16_t kExample = 14;  // "example" inside the question name "a.example"
  constexpr uint16_t kChainName = 0x4000 + kExample;
  PacketBuilder p;
  p.header(7, kFlagsResponse, 0x80, 1, 3, 0, 0).name("a.example").question(1);
  // An opaque TXT record long enough to put the CNAME's target at kChainName.
  const size_t txt_length = kChainName - (p.here() + 2 + 10) - (2 + 10);
  p.pointer(12).fixed(16, 1, 100, static_cast<uint16_t>(txt_length));
  p.raw(std::vector<uint8_t>(txt_length, 'x'));
  p.pointer(12).fixed(5, 1, 100, 11);
  ASSERT_EQ(p.here(), kChainName);
  p.name("x.example");
  p.pointer(kExample).fixed(1, 1, 60, 4).u32(0xcb007101);  // "example.": off the chain
  const auto message = parse_response(p.bytes());          // p outlives message
  ASSERT_TRUE(message) << to_string(message.error());
  AnswerWalk walk(*message);
  AnswerRecord record;
  ASSERT_TRUE(walk.next(record));
  EXPECT_EQ(record.type, RecordType::kCname);
  EXPECT_EQ(record.rdata_offset, kChainName);
  ASSERT_TRUE(walk.next(record));
  EXPECT_EQ(record.type, RecordType::kA);
  EXPECT_FALSE(record.on_chain);
  EXPECT_FALSE(walk.next(record));
}

TEST(MessageTest, TtlsAboveTwoToThe31CountAsZeroOnTheChain) {
  PacketBuilder p;
  p.header(7, kFlagsResponse, 0x80, 1, 1, 0, 0).name("a.example").question(1);
  p.pointer(12).fixed(1, 1, 0x80000000u, 4).u32(0xcb007101);
  const auto message = parse_response(p.bytes());  // p outlives message
  ASSERT_TRUE(message);
  AnswerWalk walk(*message);
  AnswerRecord record;
  ASSERT_TRUE(walk.next(record));
  EXPECT_EQ(record.ttl, 0x80000000u);
  EXPECT_EQ(record.chain_ttl, 0u);
}

TEST(MessageTest, ExtendedRcodeCombinesHeaderAndOpt) {
  PacketBuilder p;
  p.header(7, kFlagsResponse, 0x80, 1, 0, 0, 1).name("a.example").question(1).opt(512, false, 1);
  const auto message = parse_response(p.bytes());  // p outlives message
  ASSERT_TRUE(message);
  EXPECT_EQ(message->rcode(), 16);  // BADVERS
}

// Every prefix of a valid message is rejected, with a truncation reason, and never read past.
TEST(MessageTest, RejectsTruncationAtEveryOffset) {
  const std::set<ParseError> truncations = {
      ParseError::kShorterThanHeader, ParseError::kNameTruncated, ParseError::kQuestionTruncated,
      ParseError::kRecordTruncated};
  for (const auto& packet : {typical_query(), chain_response()}) {
    ASSERT_EQ(error_of(packet), ParseError::kCount);
    for (size_t length = 0; length < packet.size(); ++length) {
      // A copy of exactly `length` bytes, so ASan catches any read past the end.
      const std::vector<uint8_t> prefix(packet.begin(), packet.begin() + length);
      const ParseError error = error_of(prefix);
      EXPECT_TRUE(truncations.count(error)) << "length " << length << ": " << to_string(error);
    }
  }
}

TEST(MessageTest, RejectsBadCounts) {
  auto packet = typical_query();
  packet[5] = 0;  // QDCOUNT 0
  EXPECT_EQ(error_of(packet), ParseError::kQdcountNotOne);
  packet[5] = 2;
  EXPECT_EQ(error_of(packet), ParseError::kQdcountNotOne);
  packet = typical_query();
  packet[11] = 2;  // ARCOUNT 2, one record present
  EXPECT_EQ(error_of(packet), ParseError::kRecordTruncated);
  packet[11] = 0;  // ARCOUNT 0: the OPT record becomes trailing bytes
  EXPECT_EQ(error_of(packet), ParseError::kTrailingBytes);
  packet = typical_query();
  packet.push_back(0);
  EXPECT_EQ(error_of(packet), ParseError::kTrailingBytes);
}

TEST(MessageTest, RejectsOpcodesOtherThanQuery) {
  for (uint8_t op : {1, 2, 4, 5, 6, 15}) {
    auto packet = typical_query();
    packet[2] = static_cast<uint8_t>(op << 3);
    EXPECT_EQ(error_of(packet), ParseError::kOpcodeNotQuery) << int{op};
  }
}

TEST(MessageTest, RejectsBadNames) {
  using namespace std::string_literals;
  // Label length 64 and the extended (0x40) and obsolete (0x80) label types.
  EXPECT_EQ(error_of(query_with_raw_name("\x40" + std::string(64, 'a') + "\0"s)),
            ParseError::kBadLabelLength);
  EXPECT_EQ(error_of(query_with_raw_name("\x41\x01\0"s)), ParseError::kBadLabelLength);
  EXPECT_EQ(error_of(query_with_raw_name("\x80\x01\0"s)), ParseError::kBadLabelLength);
  // 63-byte labels: four make 257 bytes with the root, one over.
  const std::string label = "\x3f" + std::string(63, 'x');
  EXPECT_EQ(error_of(query_with_raw_name(label + label + label + label + "\0"s)),
            ParseError::kNameTooLong);
  EXPECT_EQ(
      error_of(query_with_raw_name(label + label + label + "\x3d" + std::string(61, 'y') + "\0"s)),
      ParseError::kCount);  // exactly 255
  // The question name cannot point anywhere: before it is only the header, at or after it is
  // itself.
  EXPECT_EQ(error_of(query_with_raw_name("\xc0\x0c"s)), ParseError::kForwardPointer);
  EXPECT_EQ(error_of(query_with_raw_name("\xc0\x02"s)), ParseError::kPointerIntoHeader);
  EXPECT_EQ(error_of(query_with_raw_name("\1a\xc0\x0c"s)), ParseError::kPointerLoop);
  EXPECT_EQ(error_of(query_with_raw_name("\1a\xc0\x40"s)), ParseError::kForwardPointer);
  auto cut_in_pointer = query_with_raw_name("\1a\xc0\x0c"s);
  cut_in_pointer.resize(cut_in_pointer.size() - 5);  // the pointer's second byte and QTYPE/QCLASS
  EXPECT_EQ(error_of(cut_in_pointer), ParseError::kNameTruncated);
}

// Owner names in records may point back; check the pointer rules there.
TEST(MessageTest, CompressionPointersOnlyBackwardsWithoutLoops) {
  auto answer_owned_by = [](auto&& write_owner) {
    PacketBuilder p;
    p.header(9, kFlagsResponse, 0, 1, 1, 0, 0).name("a.example").question(1);
    write_owner(p);
    p.fixed(1, 1, 60, 4).u32(0x01020304);
    return error_of(p.bytes());
  };
  EXPECT_EQ(answer_owned_by([](PacketBuilder& p) { p.pointer(12); }), ParseError::kCount);
  EXPECT_EQ(answer_owned_by([](PacketBuilder& p) { p.labels("x").pointer(14); }),
            ParseError::kCount);  // x + example
  EXPECT_EQ(answer_owned_by([](PacketBuilder& p) { p.pointer(p.here()); }),
            ParseError::kForwardPointer);
  // Two pointers that point at each other: the second points back into the part the walk
  // came from.
  EXPECT_EQ(answer_owned_by([](PacketBuilder& p) {
              const uint16_t start = p.here();
              p.labels("x").pointer(static_cast<uint16_t>(start));
            }),
            ParseError::kPointerLoop);
}

TEST(MessageTest, BoundsPointerHops) {
  EXPECT_EQ(error_of(records_with_pointer_depth(kMaxCompressionHops)), ParseError::kCount);
  EXPECT_EQ(error_of(records_with_pointer_depth(kMaxCompressionHops + 1)),
            ParseError::kTooManyPointers);
}

TEST(MessageTest, RejectsBadRdata) {
  auto response_with = [](uint16_t type, std::string_view rdata) {
    PacketBuilder p;
    p.header(9, kFlagsResponse, 0, 1, 1, 0, 0).name("a.example").question(1);
    p.pointer(12).fixed(type, 1, 60, static_cast<uint16_t>(rdata.size())).raw(rdata);
    return error_of(p.bytes());
  };
  using namespace std::string_literals;
  EXPECT_EQ(response_with(1, "\1\2\3"), ParseError::kBadAddressLength);
  EXPECT_EQ(response_with(1, "\1\2\3\4\5"), ParseError::kBadAddressLength);
  EXPECT_EQ(response_with(28, "\1\2\3\4"), ParseError::kBadAddressLength);
  EXPECT_EQ(response_with(5, "\1b\0\0"s), ParseError::kBadCnameRdata);  // a byte left over
  EXPECT_EQ(response_with(5, "\1b"), ParseError::kBadCnameRdata);       // name runs out
  EXPECT_EQ(response_with(5, ""), ParseError::kBadCnameRdata);
  EXPECT_EQ(response_with(5, "\1b\0"s), ParseError::kCount);
  EXPECT_EQ(response_with(16, "anything"), ParseError::kCount);  // opaque types stay opaque
}

// A CNAME target's own labels must stay inside its RDATA, whatever the bytes after it are;
// the name its pointer leads to is checked in the whole message, like any other name.
TEST(MessageTest, CnameTargetOwnBytesFillTheRdataWherePointersLead) {
  auto response = [](auto&& write_records) {
    PacketBuilder p;
    p.header(9, kFlagsResponse, 0, 1, 2, 0, 1).name("a.example").question(1);
    write_records(p);
    p.opt();
    return error_of(p.bytes());
  };
  // "\3abc" runs out of its 4 bytes into the next record, which starts with a byte that is no
  // label length: still a bad CNAME, not a bad label.
  EXPECT_EQ(response([](PacketBuilder& p) {
              p.pointer(12).fixed(5, 1, 60, 4).raw("\3abc");
              p.u8(0x40).fixed(1, 1, 60, 4).u32(1);
            }),
            ParseError::kBadCnameRdata);
  // A pointer at a name that starts inside an opaque record and reads on over the whole CNAME
  // record (one 17-byte label: "x" and the CNAME's 16 bytes) to the OPT's root owner. The
  // target's own bytes, "b" and the pointer, still fill its RDATA exactly.
  EXPECT_EQ(response([](PacketBuilder& p) {
              const uint16_t inside = static_cast<uint16_t>(p.here() + 2 + 10);
              p.pointer(12).fixed(16, 1, 60, 2).u8(17).u8('x');
              p.pointer(12).fixed(5, 1, 60, 4).raw("\1b").pointer(inside);
            }),
            ParseError::kCount);
}

TEST(MessageTest, RejectsMisplacedOrDuplicateOpt) {
  PacketBuilder in_answer;
  in_answer.header(9, kFlagsResponse, 0, 1, 1, 0, 0).name("a.example").question(1).opt();
  EXPECT_EQ(error_of(in_answer.bytes()), ParseError::kOptNotInAdditional);
  PacketBuilder named;
  named.header(9, kFlagsQuery, 0, 1, 0, 0, 1).name("a.example").question(1);
  named.pointer(12).fixed(41, 512, 0, 0);
  EXPECT_EQ(error_of(named.bytes()), ParseError::kOptOwnerNotRoot);
  PacketBuilder twice;
  twice.header(9, kFlagsQuery, 0, 1, 0, 0, 2).name("a.example").question(1).opt().opt();
  EXPECT_EQ(error_of(twice.bytes()), ParseError::kDuplicateOpt);
}

TEST(MessageTest, EveryReasonHasItsOwnName) {
  std::set<std::string_view> names;
  for (size_t i = 0; i < kParseErrorCount; ++i) {
    const auto name = to_string(static_cast<ParseError>(i));
    EXPECT_NE(name, "unknown");
    names.insert(name);
  }
  EXPECT_EQ(names.size(), kParseErrorCount);
}

}  // namespace
}  // namespace dnsproxy::dns
