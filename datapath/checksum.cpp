#include "datapath/checksum.h"

namespace dnsproxy::datapath {
namespace {

constexpr size_t kIpv4ChecksumOffset = 10;
constexpr size_t kUdpChecksumOffset = 6;
constexpr uint8_t kUdpProtocol = 17;

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

void store_u16(std::span<std::byte> packet, size_t offset, uint16_t value) noexcept {
  packet[offset] = std::byte{static_cast<uint8_t>(value >> 8)};
  packet[offset + 1] = std::byte{static_cast<uint8_t>(value)};
}

}  // namespace

bool write_udp_checksum(std::span<std::byte> packet, size_t l3, size_t l4, bool ipv6) noexcept {
  if (l4 + 8 > packet.size()) return false;
  const size_t udp_length =
      std::to_integer<size_t>(packet[l4 + 4]) << 8 | std::to_integer<size_t>(packet[l4 + 5]);
  if (udp_length < 8 || l4 + udp_length > packet.size()) return false;
  uint64_t sum = ipv6 ? sum_words(packet.data() + l3 + 8, 32, 0)   // IPv6 source + destination
                      : sum_words(packet.data() + l3 + 12, 8, 0);  // IPv4 source + destination
  sum += kUdpProtocol + udp_length;                                // next header / protocol, length
  store_u16(packet, l4 + kUdpChecksumOffset, 0);
  uint16_t checksum = static_cast<uint16_t>(~fold(sum_words(packet.data() + l4, udp_length, sum)));
  if (checksum == 0) checksum = 0xffff;  // 0 means "no checksum" in IPv4 and is invalid in IPv6
  store_u16(packet, l4 + kUdpChecksumOffset, checksum);
  return true;
}

void write_ipv4_header_checksum(std::span<std::byte> packet, size_t l3) noexcept {
  const size_t header_length = (std::to_integer<size_t>(packet[l3]) & 0x0f) * 4;
  store_u16(packet, l3 + kIpv4ChecksumOffset, 0);
  store_u16(packet, l3 + kIpv4ChecksumOffset,
            static_cast<uint16_t>(~fold(sum_words(packet.data() + l3, header_length, 0))));
}

}  // namespace dnsproxy::datapath
