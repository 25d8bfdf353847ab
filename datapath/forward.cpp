#include "datapath/forward.h"

#include "datapath/checksum.h"
#include "datapath/frame_layout.h"

namespace dnsproxy::datapath {
namespace {

using namespace frame;  // datapath/frame_layout.h

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

}  // namespace

ForwardVerdict rewrite_for_forwarding(std::span<std::byte> packet,
                                      const dns_steer_meta& meta) noexcept {
  switch (meta.fib_status) {
    case DNS_STEER_FIB_OK:
    case DNS_STEER_FIB_NO_NEIGH:
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
  if (!write_udp_checksum(packet, l3, l4, ipv6)) return ForwardVerdict::kMalformed;
  if (ipv6)
    packet[hop_offset] = std::byte{static_cast<uint8_t>(byte_at(packet, hop_offset) - 1)};
  else
    decrement_ipv4_ttl(packet, l3);

  if (meta.fib_status == DNS_STEER_FIB_NO_NEIGH) return ForwardVerdict::kToKernel;
  std::memcpy(packet.data(), meta.next_hop_mac, 6);
  std::memcpy(packet.data() + 6, meta.egress_mac, 6);
  return ForwardVerdict::kForward;
}

}  // namespace dnsproxy::datapath
