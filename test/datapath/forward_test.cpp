// The forwarding rewrite as data: MACs, TTL / hop limit, IPv4 checksum, and every refusal.
#include "datapath/forward.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace dnsproxy::datapath {
namespace {

constexpr uint8_t kNextHop[6] = {0x02, 0xaa, 0, 0, 0, 0x01};
constexpr uint8_t kEgress[6] = {0x02, 0xbb, 0, 0, 0, 0x02};

uint16_t ipv4_header_checksum(const std::vector<std::byte>& frame, size_t l3) {
  uint32_t sum = 0;
  for (size_t i = 0; i < 20; i += 2) {
    if (i == 10) continue;
    sum += std::to_integer<uint32_t>(frame[l3 + i]) << 8 |
           std::to_integer<uint32_t>(frame[l3 + i + 1]);
  }
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

std::vector<std::byte> bytes(std::initializer_list<int> values) {
  std::vector<std::byte> out;
  for (int v : values) out.push_back(std::byte{static_cast<uint8_t>(v)});
  return out;
}

// Ethernet + IPv4 (ttl) + UDP 53 + 12-byte DNS header, with a correct IPv4 header checksum.
std::vector<std::byte> ipv4_query(uint8_t ttl) {
  auto frame = bytes({2,    0,    0,   0,  0,    2,    2,    0, 0,   0,  0, 1, 0x08, 0x00,  // eth
                      0x45, 0,    0,   40, 0x12, 0x34, 0x40, 0, ttl, 17, 0, 0, 192,  0,
                      2,    10,   198, 51, 100,  53,                              // ipv4
                      0x30, 0x39, 0,   53, 0,    20,   0,    0,                   // udp
                      0xab, 0xcd, 1,   0,  0,    1,    0,    0, 0,   0,  0, 0});  // dns
  const uint16_t checksum = ipv4_header_checksum(frame, 14);
  frame[24] = std::byte{static_cast<uint8_t>(checksum >> 8)};
  frame[25] = std::byte{static_cast<uint8_t>(checksum)};
  return frame;
}

std::vector<std::byte> ipv6_query(uint8_t hop_limit) {
  std::vector<std::byte> frame =
      bytes({2,    0, 0, 0, 0, 2,  2,  0,        0, 0, 0, 1, 0x86, 0xdd,  // eth
             0x60, 0, 0, 0, 0, 20, 17, hop_limit});                       // ipv6 fixed part
  frame.resize(14 + 40 + 8 + 12);  // addresses, UDP and DNS header
  frame[22] = std::byte{0x20};     // source 2001:db8:c::10
  frame[23] = std::byte{0x01};
  frame[24] = std::byte{0x0d};
  frame[25] = std::byte{0xb8};
  frame[26] = std::byte{0x00};
  frame[27] = std::byte{0x0c};
  frame[37] = std::byte{0x10};
  frame[14 + 40 + 5] = std::byte{20};  // UDP length
  return frame;
}

// True when the UDP checksum verifies: the sum over pseudo-header, header and payload is 0xffff.
bool udp_checksum_valid(const std::vector<std::byte>& frame, bool ipv6) {
  const size_t l3 = 14;
  const size_t l4 = l3 + (ipv6 ? 40 : 20);
  auto word = [&](size_t i) {
    return std::to_integer<uint32_t>(frame[i]) << 8 | std::to_integer<uint32_t>(frame[i + 1]);
  };
  const size_t length = word(l4 + 4);
  uint64_t sum = 17 + length;
  const size_t addresses = ipv6 ? l3 + 8 : l3 + 12;
  for (size_t i = 0; i < (ipv6 ? 32u : 8u); i += 2) sum += word(addresses + i);
  for (size_t i = 0; i + 1 < length; i += 2) sum += word(l4 + i);
  if (length % 2 == 1) sum += std::to_integer<uint32_t>(frame[l4 + length - 1]) << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return sum == 0xffff;
}

dns_steer_meta meta_for(bool ipv6, uint8_t fib_status = DNS_STEER_FIB_OK) {
  dns_steer_meta meta{};
  meta.egress_ifindex = 7;
  std::memcpy(meta.next_hop_mac, kNextHop, 6);
  std::memcpy(meta.egress_mac, kEgress, 6);
  meta.l3_offset = 14;
  meta.dns_offset = ipv6 ? 14 + 40 + 8 : 14 + 20 + 8;
  meta.fib_status = fib_status;
  meta.flags = ipv6 ? DNS_STEER_META_IPV6 : 0;
  return meta;
}

TEST(ForwardTest, Ipv4RewritesMacsAndTtlAndKeepsTheChecksumValid) {
  for (uint8_t ttl : {2, 64, 128, 255}) {
    auto frame = ipv4_query(ttl);
    ASSERT_EQ(rewrite_for_forwarding(frame, meta_for(false)), ForwardVerdict::kForward);
    EXPECT_EQ(std::memcmp(frame.data(), kNextHop, 6), 0);
    EXPECT_EQ(std::memcmp(frame.data() + 6, kEgress, 6), 0);
    EXPECT_EQ(std::to_integer<int>(frame[22]), ttl - 1);
    const uint16_t stored = static_cast<uint16_t>(std::to_integer<int>(frame[24]) << 8 |
                                                  std::to_integer<int>(frame[25]));
    EXPECT_EQ(stored, ipv4_header_checksum(frame, 14)) << "ttl " << int{ttl};
    EXPECT_TRUE(udp_checksum_valid(frame, false));
  }
}

// What a veth hands XDP under checksum offload: only the pseudo-header sum in the UDP checksum.
TEST(ForwardTest, APartialUdpChecksumIsCompleted) {
  auto frame = ipv4_query(64);
  frame[40] = std::byte{0x5a};  // partial sum, not a valid checksum
  frame[41] = std::byte{0x17};
  ASSERT_FALSE(udp_checksum_valid(frame, false));
  ASSERT_EQ(rewrite_for_forwarding(frame, meta_for(false)), ForwardVerdict::kForward);
  EXPECT_TRUE(udp_checksum_valid(frame, false));
}

TEST(ForwardTest, AUdpLengthPastThePacketIsMalformed) {
  auto frame = ipv4_query(64);
  frame[39] = std::byte{200};  // UDP length 200 in a 20-byte datagram
  const auto before = frame;
  EXPECT_EQ(rewrite_for_forwarding(frame, meta_for(false)), ForwardVerdict::kMalformed);
  EXPECT_EQ(frame, before);
}

TEST(ForwardTest, Ipv6DecrementsTheHopLimit) {
  auto frame = ipv6_query(64);
  ASSERT_EQ(rewrite_for_forwarding(frame, meta_for(true)), ForwardVerdict::kForward);
  EXPECT_EQ(std::to_integer<int>(frame[14 + 7]), 63);
  EXPECT_EQ(std::memcmp(frame.data(), kNextHop, 6), 0);
  EXPECT_TRUE(udp_checksum_valid(frame, true));
}

TEST(ForwardTest, LastHopIsDroppedUnchanged) {
  for (uint8_t ttl : {0, 1}) {
    auto frame = ipv4_query(ttl);
    const auto before = frame;
    EXPECT_EQ(rewrite_for_forwarding(frame, meta_for(false)), ForwardVerdict::kTtlExceeded);
    EXPECT_EQ(frame, before);
    auto frame6 = ipv6_query(ttl);
    EXPECT_EQ(rewrite_for_forwarding(frame6, meta_for(true)), ForwardVerdict::kTtlExceeded);
  }
}

// No neighbour entry for the next hop yet: the node's stack sends the packet as it is, so the TTL
// and the UDP checksum are done here as for forwarding; the MACs are not known and stay.
TEST(ForwardTest, WithoutANeighbourEverythingButTheMacsIsRewrittenForTheKernel) {
  auto frame = ipv4_query(64);
  frame[40] = std::byte{0x5a};  // partial UDP checksum, as from a veth
  frame[41] = std::byte{0x17};
  const auto before = frame;
  ASSERT_EQ(rewrite_for_forwarding(frame, meta_for(false, DNS_STEER_FIB_NO_NEIGH)),
            ForwardVerdict::kToKernel);
  EXPECT_TRUE(std::equal(frame.begin(), frame.begin() + 12, before.begin())) << "MACs kept";
  EXPECT_EQ(std::to_integer<int>(frame[22]), 63);
  const uint16_t stored =
      static_cast<uint16_t>(std::to_integer<int>(frame[24]) << 8 | std::to_integer<int>(frame[25]));
  EXPECT_EQ(stored, ipv4_header_checksum(frame, 14));
  EXPECT_TRUE(udp_checksum_valid(frame, false));

  auto frame6 = ipv6_query(64);
  ASSERT_EQ(rewrite_for_forwarding(frame6, meta_for(true, DNS_STEER_FIB_NO_NEIGH)),
            ForwardVerdict::kToKernel);
  EXPECT_EQ(std::to_integer<int>(frame6[14 + 7]), 63);
  EXPECT_TRUE(udp_checksum_valid(frame6, true));

  // The last hop is dropped either way, before the kernel would see it.
  for (uint8_t ttl : {0, 1}) {
    auto last = ipv4_query(ttl);
    const auto unchanged = last;
    EXPECT_EQ(rewrite_for_forwarding(last, meta_for(false, DNS_STEER_FIB_NO_NEIGH)),
              ForwardVerdict::kTtlExceeded);
    EXPECT_EQ(last, unchanged);
  }
}

TEST(ForwardTest, WithoutAValidFibResultNothingIsSent) {
  auto frame = ipv4_query(64);
  const auto before = frame;
  EXPECT_EQ(rewrite_for_forwarding(frame, meta_for(false, DNS_STEER_FIB_NOT_FORWARDED)),
            ForwardVerdict::kNotForwarded);
  EXPECT_EQ(rewrite_for_forwarding(frame, meta_for(false, 200)), ForwardVerdict::kNotForwarded);
  EXPECT_EQ(frame, before);
}

TEST(ForwardTest, OffsetsThatDoNotFitThePacketAreMalformed) {
  auto frame = ipv4_query(64);
  auto meta = meta_for(false);
  meta.l3_offset = 60;  // IP header would run past the end
  EXPECT_EQ(rewrite_for_forwarding(frame, meta), ForwardVerdict::kMalformed);
  meta = meta_for(false);
  meta.l3_offset = 4;  // inside the Ethernet header
  EXPECT_EQ(rewrite_for_forwarding(frame, meta), ForwardVerdict::kMalformed);
  meta = meta_for(true);  // says IPv6, packet is IPv4
  EXPECT_EQ(rewrite_for_forwarding(frame, meta), ForwardVerdict::kMalformed);
  meta = meta_for(false);
  meta.dns_offset = 10;  // before the IP header
  EXPECT_EQ(rewrite_for_forwarding(frame, meta), ForwardVerdict::kMalformed);
}

TEST(ForwardTest, APayloadShorterThanADnsHeaderIsRefused) {
  auto frame = ipv4_query(64);
  frame.resize(frame.size() - 1);
  EXPECT_EQ(rewrite_for_forwarding(frame, meta_for(false)), ForwardVerdict::kShortDns);
}

TEST(ForwardTest, MetadataIsReadFromInFrontOfThePacket) {
  std::vector<std::byte> buffer(sizeof(dns_steer_meta) + 64);
  const dns_steer_meta meta = meta_for(true);
  std::memcpy(buffer.data(), &meta, sizeof(meta));
  const dns_steer_meta loaded = load_steer_meta(buffer.data() + sizeof(meta));
  EXPECT_EQ(loaded.egress_ifindex, 7u);
  EXPECT_EQ(loaded.flags, DNS_STEER_META_IPV6);
  EXPECT_EQ(loaded.dns_offset, meta.dns_offset);
}

}  // namespace
}  // namespace dnsproxy::datapath
