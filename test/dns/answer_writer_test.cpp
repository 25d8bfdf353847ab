// In-place error answers: byte-exact output, and the answer parses back as what it claims.
#include "dns/answer_writer.h"

#include <gtest/gtest.h>

#include "test/dns/packet_builder.h"

namespace dnsproxy::dns {
namespace {

using testing::PacketBuilder;

// Rewrites `packet` in place and returns the answer, trimmed to its new length.
std::vector<uint8_t> answer_to(std::vector<uint8_t> packet, ErrorAnswer rcode,
                               const AnswerConfig& config = {}) {
  const auto query = parse_query(packet);
  EXPECT_TRUE(query) << to_string(query.error());
  const size_t length = write_error_answer(packet, *query, rcode, config);
  EXPECT_LE(length, packet.size());
  packet.resize(length);
  return packet;
}

TEST(AnswerWriterTest, RefusesAQueryWithOptByteForByte) {
  PacketBuilder query;
  // RD, CD and AD set, an A record in the additional section before the OPT (cut away), DO set.
  query.header(0x1234, 0x01, 0x30, 1, 0, 0, 2).name("Deny.Example").question(28);
  query.pointer(12).fixed(1, 1, 60, 4).u32(0xc0000201);
  query.opt(4096, true);
  const auto answer = answer_to(query.bytes(), ErrorAnswer::kRefused);

  PacketBuilder expected;
  // QR RD; RA CD REFUSED; QD 1, AR 1 (our OPT: 1232, DO copied).
  expected.header(0x1234, 0x81, 0x95, 1, 0, 0, 1).name("Deny.Example").question(28);
  expected.opt(1232, true);
  EXPECT_EQ(answer, expected.bytes());
}

// RFC 6891 6.1.3: an EDNS version we do not implement gets BADVERS (16: 0 in the header, 1 in
// the OPT's extended rcode), with our version 0, whatever the policy wanted to answer.
TEST(AnswerWriterTest, EdnsVersionAboveZeroGetsBadvers) {
  PacketBuilder query;
  query.header(0x4321, 0x01, 0x00, 1, 0, 0, 1).name("a.example").question(1);
  query.opt(1232, false, 0, 1);
  const auto answer = answer_to(query.bytes(), ErrorAnswer::kRefused);

  PacketBuilder expected;
  expected.header(0x4321, 0x81, 0x80, 1, 0, 0, 1).name("a.example").question(1);
  expected.opt(1232, false, 1, 0);
  EXPECT_EQ(answer, expected.bytes());
  const auto parsed = parse_response(answer);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->rcode(), static_cast<uint16_t>(Rcode::kBadVers));
}

TEST(AnswerWriterTest, NoOptInTheQueryMeansNoneInTheAnswer) {
  PacketBuilder query;
  query.header(7, 0x00, 0x00, 1, 0, 0, 0).name("a.example").question(1);
  const auto answer =
      answer_to(query.bytes(), ErrorAnswer::kNxDomain, AnswerConfig{.recursion_available = false});
  PacketBuilder expected;
  expected.header(7, 0x80, 0x03, 1, 0, 0, 0).name("a.example").question(1);
  EXPECT_EQ(answer, expected.bytes());
}

TEST(AnswerWriterTest, AnswersParseBackAsResponsesWithTheirRcode) {
  for (const ErrorAnswer rcode :
       {ErrorAnswer::kServFail, ErrorAnswer::kNxDomain, ErrorAnswer::kRefused}) {
    const auto answer = answer_to(testing::typical_query(), rcode);
    const auto response = parse_response(answer);
    ASSERT_TRUE(response) << to_string(response.error());
    EXPECT_EQ(response->rcode(), static_cast<uint16_t>(rcode));
    EXPECT_EQ(response->id(), 0x1234);
    EXPECT_TRUE(rd(response->header()));
    EXPECT_TRUE(ra(response->header()));
    EXPECT_FALSE(aa(response->header()));
    EXPECT_EQ(response->answer_count, 0);
    EXPECT_TRUE(response->edns.present);
    EXPECT_TRUE(response->edns.dnssec_ok);
    EXPECT_EQ(response->edns.udp_payload_size, 1232);
  }
}

}  // namespace
}  // namespace dnsproxy::dns
