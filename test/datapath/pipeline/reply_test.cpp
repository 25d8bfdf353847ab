// The reply rewrites as data: a denied query turned around into REFUSED (v4, v6, 802.1Q, IPv4
// options, IPv6 extension headers, Ethernet padding), a parked response shrunk to SERVFAIL, and
// every refusal leaving the frame unchanged.
#include "datapath/pipeline/reply.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "datapath/forward.h"
#include "dns/answer_writer.h"
#include "dns/message.h"
#include "test/datapath/frame_builder.h"
#include "test/dns/packet_builder.h"

namespace dnsproxy::datapath::pipeline {
namespace {

using test::build_frame;
using test::FrameLayout;
using test::FrameSpec;

constexpr test::Mac kClientMac{0x02, 0xc1, 0, 0, 0, 0x10};
constexpr test::Mac kNodeMac{0x02, 0x4e, 0, 0, 0, 0x01};
constexpr test::Ipv4 kClient4{192, 0, 2, 10};
constexpr test::Ipv4 kServer4{198, 51, 100, 53};
constexpr test::Ipv6 kClient6{0x20, 0x01, 0x0d, 0xb8, 0, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10};
constexpr test::Ipv6 kServer6{0x20, 0x01, 0x0d, 0xb8, 0, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53};

uint32_t word(const std::vector<std::byte>& f, size_t at) {
  return std::to_integer<uint32_t>(f[at]) << 8 | std::to_integer<uint32_t>(f[at + 1]);
}

uint32_t fold(uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint32_t>(sum);
}

bool ipv4_checksum_ok(const std::vector<std::byte>& f, size_t l3) {
  const size_t length = (std::to_integer<size_t>(f[l3]) & 0x0f) * 4;
  uint64_t sum = 0;
  for (size_t i = 0; i < length; i += 2) sum += word(f, l3 + i);
  return fold(sum) == 0xffff;
}

bool udp_checksum_ok(const std::vector<std::byte>& f, size_t l3, size_t l4, bool ipv6) {
  const size_t length = word(f, l4 + 4);
  uint64_t sum = 17 + length;
  const size_t addresses = ipv6 ? l3 + 8 : l3 + 12;
  for (size_t i = 0; i < (ipv6 ? 32u : 8u); i += 2) sum += word(f, addresses + i);
  for (size_t i = 0; i + 1 < length; i += 2) sum += word(f, l4 + i);
  if (length % 2 == 1) sum += std::to_integer<uint32_t>(f[l4 + length - 1]) << 8;
  return fold(sum) == 0xffff;
}

struct Case {
  const char* name;
  bool ipv6 = false;
  bool vlan = false;
  uint8_t ihl = 5;
  bool extension = false;
  size_t pad_to = 0;
};

struct Built {
  std::vector<std::byte> frame;
  dns_steer_meta meta{};
  size_t dns_length = 0;
};

// A query frame client -> server carrying `dns` (zero checksums, as dns_steer does not need them).
Built query_frame(const Case& c, const std::vector<uint8_t>& dns) {
  FrameSpec spec;
  spec.dst_mac = kNodeMac;
  spec.src_mac = kClientMac;
  if (c.vlan) spec.vlan_tags = {0x0064};
  if (c.ipv6) {
    spec.ipv6 = test::Ipv6Spec{.src = kClient6, .dst = kServer6};
    if (c.extension) spec.ipv6->extensions = {{60, 8}};  // destination options
  } else {
    spec.ipv4 = test::Ipv4Spec{.src = kClient4, .dst = kServer4, .ihl = c.ihl};
  }
  spec.sport = 40000;
  spec.dport = 53;
  spec.dns_length = dns.size();
  spec.pad_to = c.pad_to;
  FrameLayout layout;
  const std::vector<uint8_t> raw = build_frame(spec, &layout);
  Built out;
  out.frame.resize(raw.size());
  std::memcpy(out.frame.data(), raw.data(), raw.size());
  std::memcpy(out.frame.data() + layout.dns_offset, dns.data(), dns.size());
  out.meta.l3_offset = layout.l3_offset;
  out.meta.dns_offset = layout.dns_offset;
  out.meta.flags =
      static_cast<uint8_t>((c.ipv6 ? DNS_STEER_META_IPV6 : 0) | (c.vlan ? DNS_STEER_META_VLAN : 0));
  out.dns_length = dns.size();
  return out;
}

// The DNS payload of `frame` from `offset` to the end, as the codec's byte type.
std::span<uint8_t> dns_bytes(std::vector<std::byte>& frame, size_t offset, size_t length) {
  return {reinterpret_cast<uint8_t*>(frame.data()) + offset, length};
}

TEST(ReplyTest, ADeniedQueryIsTurnedAroundIntoRefused) {
  const Case cases[] = {
      {"ipv4"},
      {"ipv4 vlan", false, true},
      {"ipv4 options", false, false, 7},
      {"ipv4 padded", false, false, 5, false, 128},
      {"ipv6", true},
      {"ipv6 vlan", true, true},
      {"ipv6 extension header", true, false, 5, true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Built b = query_frame(c, dns::testing::typical_query());
    const size_t l3 = b.meta.l3_offset;
    const size_t l4 = b.meta.dns_offset - 8u;
    auto payload = dns_bytes(b.frame, b.meta.dns_offset, b.dns_length);
    auto query = dns::parse_query(payload);
    ASSERT_TRUE(query.has_value());
    const size_t answer_length =
        dns::write_error_answer(payload, *query, dns::ErrorAnswer::kRefused, {});
    ASSERT_LE(answer_length, b.dns_length);

    const uint32_t length = turn_around(b.frame, b.meta, answer_length);
    ASSERT_EQ(length, b.meta.dns_offset + answer_length);
    b.frame.resize(length);

    EXPECT_EQ(std::memcmp(b.frame.data(), kClientMac.data(), 6), 0);
    EXPECT_EQ(std::memcmp(b.frame.data() + 6, kNodeMac.data(), 6), 0);
    if (c.vlan) {
      EXPECT_EQ(word(b.frame, 12), 0x8100u);
      EXPECT_EQ(word(b.frame, 14), 0x0064u);
    }
    if (c.ipv6) {
      EXPECT_EQ(std::memcmp(b.frame.data() + l3 + 8, kServer6.data(), 16), 0);
      EXPECT_EQ(std::memcmp(b.frame.data() + l3 + 24, kClient6.data(), 16), 0);
      EXPECT_EQ(word(b.frame, l3 + 4), length - l3 - 40);
      EXPECT_EQ(std::to_integer<int>(b.frame[l3 + 7]), kReplyHopLimit);
    } else {
      EXPECT_EQ(std::memcmp(b.frame.data() + l3 + 12, kServer4.data(), 4), 0);
      EXPECT_EQ(std::memcmp(b.frame.data() + l3 + 16, kClient4.data(), 4), 0);
      EXPECT_EQ(word(b.frame, l3 + 2), length - l3);
      EXPECT_EQ(std::to_integer<int>(b.frame[l3 + 8]), kReplyHopLimit);
      EXPECT_TRUE(ipv4_checksum_ok(b.frame, l3));
    }
    EXPECT_EQ(word(b.frame, l4), 53u);
    EXPECT_EQ(word(b.frame, l4 + 2), 40000u);
    EXPECT_EQ(word(b.frame, l4 + 4), 8 + answer_length);
    EXPECT_TRUE(udp_checksum_ok(b.frame, l3, l4, c.ipv6));

    auto answer = dns::parse_response(dns_bytes(b.frame, b.meta.dns_offset, answer_length));
    ASSERT_TRUE(answer.has_value());
    EXPECT_EQ(answer->rcode(), static_cast<uint16_t>(dns::Rcode::kRefused));
  }
}

// The checksum test above must be able to fail: a frame whose lengths are stale does not verify.
TEST(ReplyTest, TheChecksumChecksCatchAStaleFrame) {
  Built b = query_frame({"ipv4"}, dns::testing::typical_query());
  const size_t l3 = b.meta.l3_offset;
  EXPECT_FALSE(ipv4_checksum_ok(b.frame, l3));  // the builder leaves it zero
  ASSERT_EQ(turn_around(b.frame, b.meta, b.dns_length), b.frame.size());
  EXPECT_TRUE(ipv4_checksum_ok(b.frame, l3));
  b.frame[l3 + 2] = std::byte{0x7f};
  EXPECT_FALSE(ipv4_checksum_ok(b.frame, l3));
}

TEST(ReplyTest, OffsetsThatDoNotFitLeaveTheFrameUnchanged) {
  Built b = query_frame({"ipv4"}, dns::testing::typical_query());
  const auto before = b.frame;
  auto bent = [&](auto change) {
    dns_steer_meta meta = b.meta;
    change(meta);
    return meta;
  };
  EXPECT_EQ(turn_around(b.frame, bent([](auto& m) { m.l3_offset = 4; }), b.dns_length), 0u);
  EXPECT_EQ(
      turn_around(b.frame, bent([](auto& m) { m.flags = DNS_STEER_META_IPV6; }), b.dns_length), 0u);
  EXPECT_EQ(turn_around(b.frame, bent([](auto& m) { m.dns_offset = 20; }), b.dns_length), 0u);
  EXPECT_EQ(turn_around(b.frame, b.meta, b.dns_length + 1), 0u);  // past the frame
  EXPECT_EQ(turn_around(b.frame, b.meta, 11), 0u);                // shorter than a DNS header
  EXPECT_EQ(resize_payload(b.frame, bent([](auto& m) { m.l3_offset = 900; }), b.dns_length), 0u);
  EXPECT_EQ(b.frame, before);
}

// A parked response that timed out with --on-max-delay servfail: same direction, shorter.
TEST(ReplyTest, AResponseShrunkToServfailThenForwardsWithValidChecksums) {
  for (bool ipv6 : {false, true}) {
    SCOPED_TRACE(ipv6 ? "ipv6" : "ipv4");
    Built b = query_frame({"response", ipv6}, dns::testing::chain_response());
    b.meta.flags |= DNS_STEER_META_RESPONSE;
    b.meta.fib_status = DNS_STEER_FIB_OK;
    b.meta.egress_ifindex = 3;
    const size_t l3 = b.meta.l3_offset;
    auto payload = dns_bytes(b.frame, b.meta.dns_offset, b.dns_length);
    auto response = dns::parse_response(payload);
    ASSERT_TRUE(response.has_value());
    const size_t answer_length =
        dns::write_error_answer(payload, *response, dns::ErrorAnswer::kServFail, {});
    const uint32_t length = resize_payload(b.frame, b.meta, answer_length);
    ASSERT_EQ(length, b.meta.dns_offset + answer_length);
    b.frame.resize(length);
    ASSERT_EQ(rewrite_for_forwarding(b.frame, b.meta), ForwardVerdict::kForward);
    if (!ipv6) {
      EXPECT_TRUE(ipv4_checksum_ok(b.frame, l3));
    }
    EXPECT_TRUE(udp_checksum_ok(b.frame, l3, b.meta.dns_offset - 8u, ipv6));
    auto answer = dns::parse_response(dns_bytes(b.frame, b.meta.dns_offset, answer_length));
    ASSERT_TRUE(answer.has_value());
    EXPECT_EQ(answer->rcode(), static_cast<uint16_t>(dns::Rcode::kServFail));
    EXPECT_EQ(answer->answer_count, 0);
  }
}

}  // namespace
}  // namespace dnsproxy::datapath::pipeline
