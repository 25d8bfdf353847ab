#include "datapath/forward.h"

namespace dnsproxy::datapath {
namespace {

constexpr size_t kEthernetHeader = 14;
constexpr size_t kIpv4MinHeader = 20;
constexpr size_t kIpv6Header = 40;
constexpr size_t kDnsHeader = 12;
constexpr size_t kIpv4TtlOffset = 8;
constexpr size_t kIpv4ChecksumOffset = 10;
constexpr size_t kIpv6HopLimitOffset = 7;

uint8_t byte_at(std::span<std::byte> packet, size_t offset) noexcept {
  return std::to_integer<uint8_t>(packet[offset]);
}

// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), with 16-bit one's complement sums. TTL is the high
// byte of the 16-bit word (TTL, protocol), so only that word changes.
void decrement_ipv4_ttl(std::span<std::byte> packet, size_t l3) noexcept {
  const uint8_t ttl = byte_at(packet, l3 + kIpv4TtlOffset);
  const uint8_t protocol = byte_at(packet, l3 + kIpv4TtlOffset + 1);
  const uint16_t old_word = static_cast<uint16_t>(ttl << 8 | protocol);
  const uint16_t new_word = static_cast<uint16_t>((ttl - 1) << 8 | protocol);
  const uint16_t old_checksum =
      static_cast<uint16_t>(byte_at(packet, l3 + kIpv4ChecksumOffset) << 8 |
                            byte_at(packet, l3 + kIpv4ChecksumOffset + 1));
  uint32_t sum = static_cast<uint16_t>(~old_checksum) + static_cast<uint16_t>(~old_word) + new_word;
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  const uint16_t new_checksum = static_cast<uint16_t>(~sum);
  packet[l3 + kIpv4TtlOffset] = std::byte{static_cast<uint8_t>(ttl - 1)};
  packet[l3 + kIpv4ChecksumOffset] = std::byte{static_cast<uint8_t>(new_checksum >> 8)};
  packet[l3 + kIpv4ChecksumOffset + 1] = std::byte{static_cast<uint8_t>(new_checksum)};
}

// One's complement sum of big-endian 16-bit words (RFC 1071), not yet folded.
uint64_t sum_words(const std::byte* data, size_t length, uint64_t sum) noexcept {
  size_t i = 0;
  for (; i + 1 < length; i += 2)
    sum += std::to_integer<uint32_t>(data[i]) << 8 | std::to_integer<uint32_t>(data[i + 1]);
  if (i < length) sum += std::to_integer<uint32_t>(data[i]) << 8;
  return sum;
}

uint16_t fold(uint64_t sum) noexcept {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

// Recomputes the UDP checksum in full over the pseudo-header, header and payload. Needed because
// a packet that reached XDP from a virtual device (veth: a pod, a namespace) may still carry
// CHECKSUM_PARTIAL: its checksum field holds only the pseudo-header sum, which the kernel would
// have completed on output. Sent as is, the receiver drops it. Returns false when the UDP length
// does not fit the packet.
bool rewrite_udp_checksum(std::span<std::byte> packet, size_t l3, size_t l4, bool ipv6) noexcept {
  if (l4 + 8 > packet.size()) return false;
  const size_t udp_length =
      std::to_integer<size_t>(packet[l4 + 4]) << 8 | std::to_integer<size_t>(packet[l4 + 5]);
  if (udp_length < 8 || l4 + udp_length > packet.size()) return false;
  uint64_t sum = ipv6 ? sum_words(packet.data() + l3 + 8, 32, 0)   // IPv6 source + destination
                      : sum_words(packet.data() + l3 + 12, 8, 0);  // IPv4 source + destination
  sum += 17 + udp_length;                                          // next header / protocol, length
  packet[l4 + 6] = std::byte{0};
  packet[l4 + 7] = std::byte{0};
  uint16_t checksum = static_cast<uint16_t>(~fold(sum_words(packet.data() + l4, udp_length, sum)));
  if (checksum == 0) checksum = 0xffff;  // 0 means "no checksum" in IPv4 and is invalid in IPv6
  packet[l4 + 6] = std::byte{static_cast<uint8_t>(checksum >> 8)};
  packet[l4 + 7] = std::byte{static_cast<uint8_t>(checksum)};
  return true;
}

}  // namespace

ForwardVerdict rewrite_for_forwarding(std::span<std::byte> packet,
                                      const dns_steer_meta& meta) noexcept {
  switch (meta.fib_status) {
    case DNS_STEER_FIB_OK:
      break;
    default:
      return ForwardVerdict::kNotForwarded;
  }
  const bool ipv6 = (meta.flags & DNS_STEER_META_IPV6) != 0;
  const size_t l3 = meta.l3_offset;
  if (l3 < kEthernetHeader || l3 + (ipv6 ? kIpv6Header : kIpv4MinHeader) > packet.size())
    return ForwardVerdict::kMalformed;
  if (byte_at(packet, l3) >> 4 != (ipv6 ? 6 : 4)) return ForwardVerdict::kMalformed;
  const size_t l4 = size_t{meta.dns_offset} - 8;  // UDP header: right before the DNS header
  if (meta.dns_offset < 8 || l4 < l3 + (ipv6 ? kIpv6Header : kIpv4MinHeader))
    return ForwardVerdict::kMalformed;
  if (size_t{meta.dns_offset} + kDnsHeader > packet.size()) return ForwardVerdict::kShortDns;

  const size_t hop_offset = l3 + (ipv6 ? kIpv6HopLimitOffset : kIpv4TtlOffset);
  if (byte_at(packet, hop_offset) <= 1) return ForwardVerdict::kTtlExceeded;
  if (!rewrite_udp_checksum(packet, l3, l4, ipv6)) return ForwardVerdict::kMalformed;
  if (ipv6)
    packet[hop_offset] = std::byte{static_cast<uint8_t>(byte_at(packet, hop_offset) - 1)};
  else
    decrement_ipv4_ttl(packet, l3);

  std::memcpy(packet.data(), meta.next_hop_mac, 6);
  std::memcpy(packet.data() + 6, meta.egress_mac, 6);
  return ForwardVerdict::kForward;
}

}  // namespace dnsproxy::datapath
