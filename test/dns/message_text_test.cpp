// Text forms for people: mnemonics, JSON lines, hex input.
#include "dns/message_text.h"

#include <gtest/gtest.h>

#include "test/dns/packet_builder.h"

namespace dnsproxy::dns {
namespace {

using testing::PacketBuilder;

TEST(MessageTextTest, MnemonicsLikeDig) {
  EXPECT_EQ(type_to_text(1), "A");
  EXPECT_EQ(type_to_text(28), "AAAA");
  EXPECT_EQ(type_to_text(65280), "TYPE65280");
  EXPECT_EQ(rcode_to_text(3), "NXDOMAIN");
  EXPECT_EQ(rcode_to_text(16), "BADVERS");
  EXPECT_EQ(rcode_to_text(23), "RCODE23");
  EXPECT_EQ(opcode_to_text(0), "QUERY");
  EXPECT_EQ(opcode_to_text(9), "OPCODE9");
}

TEST(MessageTextTest, ResponseAsOneJsonLine) {
  const auto packet = testing::chain_response();
  const auto message = parse_message(packet);
  ASSERT_TRUE(message);
  EXPECT_EQ(message_to_json(*message),
            R"({"id":48879,"qr":true,"opcode":"QUERY","rcode":"NOERROR",)"
            R"("qname":"www.example.com.","qtype":"A","answers":[)"
            R"({"name":"www.example.com.","type":"CNAME","ttl":300,"data":"a.cdn.example.net."},)"
            R"({"name":"a.cdn.example.net.","type":"CNAME","ttl":120,"data":"b.cdn.example.net."},)"
            R"({"name":"b.cdn.example.net.","type":"A","ttl":60,"data":"203.0.113.1"},)"
            R"({"name":"b.cdn.example.net.","type":"A","ttl":600,"data":"203.0.113.2"},)"
            R"({"name":"b.cdn.example.net.","type":"AAAA","ttl":30,"data":"2001:db8:e::1"},)"
            R"({"name":"b.cdn.example.net.","type":"AAAA","ttl":600,"data":"2001:db8:e::2"}],)"
            R"("min_ttl":30})");
}

TEST(MessageTextTest, EscapesNamesForPresentationAndJson) {
  const auto packet = testing::typical_query("a\\.b\\\"c.Example", 65);
  const auto message = parse_message(packet);
  ASSERT_TRUE(message);
  EXPECT_EQ(message_to_json(*message),
            R"({"id":4660,"qr":false,"opcode":"QUERY","rcode":"NOERROR",)"
            R"("qname":"a\\.b\\\"c.Example.","qtype":"HTTPS","answers":[],"min_ttl":null})");
}

TEST(MessageTextTest, HexInput) {
  EXPECT_EQ(bytes_from_hex("00 ff\nA0").value(), (std::vector<uint8_t>{0x00, 0xff, 0xa0}));
  EXPECT_EQ(bytes_from_hex("abc").error().message, "odd number of hex digits");
  EXPECT_EQ(bytes_from_hex("0x00").error().message, "not a hex digit: 'x'");
}

}  // namespace
}  // namespace dnsproxy::dns
